use std::{collections::HashSet, sync::Arc};

use super::*;

const V1_6_18: &str = include_str!("../../../tests/fixtures/kmsg-oom-6.18-v1-memcg.txt");
const V2_6_1: &str = include_str!("../../../tests/fixtures/kmsg-oom-6.1-v2-group.txt");
const V2_6_12: &str = include_str!("../../../tests/fixtures/kmsg-oom-6.12-v2-group.txt");
const SHAPE_6_19: &str = include_str!("../../../tests/fixtures/kmsg-oom-6.19-shape.txt");
const SHAPE_4_19: &str = include_str!("../../../tests/fixtures/kmsg-oom-4.19-shape.txt");
const SHAPE_4_14: &str = include_str!("../../../tests/fixtures/kmsg-oom-4.14-shape.txt");
const SHAPE_3_10: &str = include_str!("../../../tests/fixtures/kmsg-oom-3.10-rhel7-shape.txt");
const SHAPE_2_6_32: &str = include_str!("../../../tests/fixtures/kmsg-oom-2.6.32-rhel6-shape.txt");

/// The fixtures are `dmesg` output: `[seconds.micros] text`; `#` lines are
/// comments. A line without the prefix is fed as is, with no time.
fn fixture(text: &str) -> Vec<Line<'_>> {
    text.lines().filter(|l| !l.starts_with('#')).map(dmesg_line).collect()
}

fn dmesg_line(line: &str) -> Line<'_> {
    let parsed = line.strip_prefix('[').and_then(|rest| {
        let (stamp, text) = rest.split_once(']')?;
        let (secs, micros) = stamp.trim().split_once('.')?;
        let usec = secs.parse::<u64>().ok()? * 1_000_000 + micros.parse::<u64>().ok()?;
        Some(Line { usec: Some(usec), text: text.strip_prefix(' ').unwrap_or(text) })
    });
    parsed.unwrap_or(Line { usec: None, text: line })
}

fn run(lines: &[Line<'_>]) -> (Vec<Item>, ParserStats) {
    let mut parser = Parser::new();
    let mut items: Vec<Item> = lines.iter().flat_map(|&l| parser.push(l)).collect();
    items.extend(parser.finish());
    (items, parser.stats())
}

fn run_text(text: &str) -> (Vec<Item>, ParserStats) {
    run(&fixture(text))
}

fn kills_in(items: &[Item]) -> Vec<&KernelKill> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Kill(k) => Some(&**k),
            _ => None,
        })
        .collect()
}

fn header(kill: &KernelKill) -> &Header {
    kill.header.as_deref().unwrap_or_else(|| panic!("kill {} has no header", kill.pid))
}

fn stat<'h>(h: &'h Header, key: &str) -> Option<&'h str> {
    h.memory_stat.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn cell<'r>(row: &'r [(String, String)], column: &str) -> &'r str {
    row.iter().find(|(c, _)| c == column).map(|(_, v)| v.as_str()).unwrap_or_default()
}

#[test]
fn v1_memcg_on_6_18() {
    let (items, stats) = run_text(V1_6_18);
    let kills = kills_in(&items);
    assert_eq!(items.len(), 3);
    assert_eq!(kills.iter().map(|k| k.pid).collect::<Vec<_>>(), [7558, 8354, 8355]);
    assert_eq!(
        kills.iter().map(|k| k.comm.as_str()).collect::<Vec<_>>(),
        ["oomhog-manual", "oomt-cbdb19", "oomt-cbdb19"]
    );

    let k = kills[0];
    assert_eq!(k.usec, Some(558_908_182));
    assert_eq!(k.reason.as_deref(), Some("Memory cgroup out of memory"));
    assert_eq!(
        (k.figures.total_vm_kb, k.figures.anon_rss_kb, k.figures.file_rss_kb, k.figures.shmem_rss_kb),
        (Some(207776), Some(65280), Some(1676), Some(0))
    );
    assert_eq!(
        (k.figures.uid, k.figures.pgtables_kb, k.figures.oom_score_adj, k.score),
        (Some(0), Some(172), Some(0), None)
    );
    assert!(!k.group_member);
    assert_eq!(k.lines.len(), 1);

    let h = header(k);
    assert_eq!(h.usec, Some(558_905_221));
    assert!(!h.truncated);
    assert_eq!(h.trigger_comm.as_deref(), Some("oomhog-manual"));
    assert_eq!(h.gfp_mask.as_deref(), Some("0xcc0(GFP_KERNEL)"));
    assert_eq!((h.order, h.trigger_oom_score_adj), (Some(0), Some(0)));
    assert_eq!((h.cpu, h.trigger_uid, h.trigger_pid), (Some(0), Some(0), Some(7558)));
    assert_eq!(h.memory, Some(Usage { usage_kb: 65536, limit_kb: 65536, failcnt: 20 }));
    assert_eq!(h.memsw, Some(Usage { usage_kb: 65536, limit_kb: 9007199254740988, failcnt: 0 }));
    assert_eq!(h.kmem, Some(Usage { usage_kb: 192, limit_kb: 9007199254740988, failcnt: 0 }));
    assert_eq!(h.swap, None);
    let path = "/process_api/254e109ec0982371acb17d9fdb18841e/oomtest-manual";
    assert_eq!(h.stats_cgroup.as_deref(), Some(path));
    // v1 keys (6.5+ print memcg1_stat_format on v1 hosts).
    assert_eq!(h.memory_stat.len(), 42);
    assert_eq!(h.memory_stat[0], ("cache".to_owned(), "0".to_owned()));
    assert_eq!(stat(h, "total_inactive_file"), Some("0"));
    assert_eq!(stat(h, "hierarchical_memory_limit"), Some("67108864"));
    assert_eq!(h.task_columns.len(), 12);
    assert_eq!(h.tasks.len(), 1);
    assert_eq!(cell(&h.tasks[0], "rss_anon"), "16320");
    assert_eq!(cell(&h.tasks[0], "name"), "oomhog-manual");
    assert_eq!(h.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
    assert_eq!((h.oom_cgroup.as_deref(), h.task_cgroup.as_deref()), (Some(path), Some(path)));
    assert_eq!(
        (h.cpuset.as_deref(), h.mems_allowed.as_deref(), h.nodemask.as_deref()),
        (Some("/"), Some("0"), Some("(null)"))
    );
    assert!(!h.global_oom);
    assert_eq!(
        (h.chosen_comm.as_deref(), h.chosen_pid, h.chosen_uid),
        (Some("oomhog-manual"), Some(7558), Some(0))
    );
    // Every line from `invoked oom-killer` to `oom-kill:` is kept.
    assert_eq!(h.lines.len(), 118);
    assert!(h.lines[0].contains("invoked oom-killer"));
    assert!(h.lines[117].starts_with("oom-kill:"));

    assert_eq!(header(kills[2]).trigger_pid, Some(8355));
    // Reports 2 and 3 are whole too: 108 lines from trigger to summary each.
    assert_eq!(kills[1..].iter().map(|k| header(k).lines.len()).collect::<Vec<_>>(), [108, 112]);
    assert_eq!(
        stats,
        ParserStats {
            lines: 346,
            report_lines: 341,
            unrelated_lines: 5,
            headers: 3,
            kills: 3,
            ..ParserStats::default()
        }
    );
}

/// Checks a captured Debian guest run of tests/kernels: three single kills,
/// then a memory.oom.group kill of 50 tasks.
fn v2_group(text: &str, victim: i32, columns: &[&str], stat_keys: usize, header_lines: usize) {
    let (items, stats) = run_text(text);
    let kills = kills_in(&items);
    assert_eq!(items.len(), 54, "every item is a kill");
    assert_eq!(kills.len(), 54);
    for single in &kills[..3] {
        assert_eq!(single.comm, "oomt-single");
        let h = header(single);
        assert_eq!(h.chosen_pid, Some(single.pid));
        assert_eq!(h.tasks.len(), 1);
        assert_eq!(h.oom_cgroup.as_deref(), Some("/single"));
        assert!(!single.group_member);
    }
    assert_eq!(HashSet::<i32>::from_iter(kills[..3].iter().map(|k| k.pid)).len(), 3);

    let group = &kills[3..];
    let chosen = group[0];
    assert_eq!((chosen.pid, chosen.comm.as_str(), chosen.group_member), (victim, "oomt-grphog", false));
    assert_eq!(chosen.group_cgroup, None);
    let h = header(chosen);
    assert!(group.iter().all(|k| Arc::ptr_eq(k.header.as_ref().unwrap(), chosen.header.as_ref().unwrap())));
    let members = &group[1..];
    assert_eq!(members.len(), 50);
    assert!(members.iter().all(|k| k.group_member && k.group_cgroup.as_deref() == Some("/group")));
    assert_eq!(members.iter().filter(|k| k.comm == "oomt-sleeper").count(), 49);
    // The chosen victim's line comes again as a member: a duplicate the
    // caller dedupes by pid.
    let repeat = members.last().unwrap();
    assert_eq!((repeat.pid, repeat.comm.as_str()), (victim, "oomt-grphog"));
    assert_eq!(
        (repeat.figures.anon_rss_kb, repeat.figures.pgtables_kb),
        (chosen.figures.anon_rss_kb, chosen.figures.pgtables_kb)
    );
    assert_eq!(HashSet::<i32>::from_iter(group.iter().map(|k| k.pid)).len(), 50);

    assert_eq!(h.trigger_comm.as_deref(), Some("oomt-grphog"));
    assert_eq!(h.trigger_pid, Some(victim));
    assert_eq!(
        h.memory,
        Some(Usage { usage_kb: 65536, limit_kb: 65536, failcnt: h.memory.unwrap().failcnt })
    );
    assert_eq!(h.swap, Some(Usage { usage_kb: 0, limit_kb: 0, failcnt: 0 }));
    assert_eq!(h.memsw, None);
    assert_eq!(h.stats_cgroup.as_deref(), Some("/group"));
    assert_eq!(h.memory_stat.len(), stat_keys);
    assert_eq!(h.memory_stat[0].0, "anon");
    for key in ["anon", "file", "kernel", "inactive_file", "active_file", "workingset_refault_anon"] {
        assert!(stat(h, key).is_some(), "memory.stat key {key}");
    }
    assert_eq!(h.task_columns, columns);
    assert_eq!(h.tasks.len(), 50);
    assert!(h.tasks.iter().all(|row| row.len() == columns.len()));
    let hog = h.tasks.iter().find(|row| cell(row, "pid") == victim.to_string()).unwrap();
    assert_eq!(cell(hog, "name"), "oomt-grphog");
    assert_eq!(cell(hog, "uid"), "0");
    assert_eq!(h.task_pids().collect::<HashSet<_>>(), HashSet::from_iter(group.iter().map(|k| k.pid)));
    assert_eq!(h.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
    assert_eq!((h.oom_cgroup.as_deref(), h.task_cgroup.as_deref()), (Some("/group"), Some("/group")));
    assert_eq!(
        (h.chosen_comm.as_deref(), h.chosen_pid, h.chosen_uid),
        (Some("oomt-grphog"), Some(victim), Some(0))
    );
    assert_eq!(h.lines.len(), header_lines);

    assert_eq!(stats.headers, 4);
    assert_eq!(stats.kills, 54);
    assert_eq!(stats.group_members, 50);
    assert_eq!((stats.kills_without_header, stats.stale_headers, stats.unparsed_lines), (0, 0, 0));
    assert_eq!(stats.report_lines + stats.unrelated_lines, stats.lines);
}

#[test]
fn v2_group_kill_on_6_1() {
    let columns =
        ["pid", "uid", "tgid", "total_vm", "rss", "pgtables_bytes", "swapents", "oom_score_adj", "name"];
    v2_group(V2_6_1, 189, &columns, 29, 134);
    let (items, _) = run_text(V2_6_1);
    let first = kills_in(&items)[0];
    assert_eq!(header(first).trigger_uid, None, "6.1 prints no UID: in the CPU line");
    assert_eq!(first.usec, Some(4_059_318));
}

#[test]
fn v2_group_kill_on_6_12() {
    let columns = [
        "pid",
        "uid",
        "tgid",
        "total_vm",
        "rss",
        "rss_anon",
        "rss_file",
        "rss_shmem",
        "pgtables_bytes",
        "swapents",
        "oom_score_adj",
        "name",
    ];
    v2_group(V2_6_12, 229, &columns, 60, 171);
    let (items, _) = run_text(V2_6_12);
    let h = header(kills_in(&items)[0]);
    assert_eq!((h.cpu, h.trigger_uid, h.trigger_pid), (Some(0), Some(0), Some(173)));
}

#[test]
fn shapes_of_6_19() {
    let (items, stats) = run_text(SHAPE_6_19);
    assert_eq!(items.len(), 4);
    let Item::Kill(memcg) = &items[0] else { panic!("{:?}", items[0]) };
    let h = header(memcg);
    assert_eq!((h.min_protection_kb, h.low_protection_kb), (Some(0), Some(51200)));
    assert_eq!(h.trigger_oom_score_adj, Some(200));
    assert_eq!(h.memory_stat.len(), 7);
    assert_eq!(h.cpuset.as_deref(), Some("session-3.scope"));
    assert_eq!(memcg.figures.oom_score_adj, Some(200));

    let Item::Kill(global) = &items[1] else { panic!("{:?}", items[1]) };
    assert_eq!(global.reason.as_deref(), Some("Out of memory (oom_kill_allocating_task)"));
    let h = header(global);
    assert!(h.global_oom);
    assert_eq!(h.constraint.as_deref(), Some("CONSTRAINT_NONE"));
    assert_eq!(
        (h.oom_cgroup.as_deref(), h.task_cgroup.as_deref()),
        (None, Some("/system.slice/app.service"))
    );
    assert_eq!(h.memory, None);
    assert_eq!(h.tasks.len(), 2);
    assert!(h.lines.iter().any(|l| l == "kmalloc-2k               1234KB       2345KB"));
    assert!(h.lines.iter().any(|l| l == " active_file:10 inactive_file:20 isolated_file:0"));

    let Item::Exiting(exiting) = &items[2] else { panic!("{:?}", items[2]) };
    assert_eq!((exiting.pid, exiting.comm.as_str()), (1600, "app"));
    assert_eq!(exiting.reason.as_deref(), Some("Memory cgroup out of memory"));
    assert_eq!(exiting.header.as_ref().and_then(|h| h.chosen_pid), Some(1600));

    let Item::Kill(alone) = &items[3] else { panic!("{:?}", items[3]) };
    assert_eq!(alone.pid, 1800);
    assert_eq!(alone.header, None, "the no-killable header is not attached to a later kill");
    assert_eq!(
        (stats.headers, stats.stale_headers, stats.no_killable, stats.reap_failures, stats.exiting),
        (4, 1, 1, 1, 1)
    );
    assert_eq!(
        (stats.kills, stats.kills_without_header, stats.unparsed_lines, stats.unrelated_lines),
        (3, 1, 0, 0)
    );
}

#[test]
fn shapes_of_4_19_group_without_prefix() {
    let (items, stats) = run_text(SHAPE_4_19);
    let kills = kills_in(&items);
    assert_eq!(
        kills.iter().map(|k| (k.pid, k.group_member)).collect::<Vec<_>>(),
        [(4001, false), (4002, true), (4003, true), (4001, true), (4100, false)]
    );
    let chosen = kills[0];
    assert_eq!((chosen.score, chosen.reason.as_deref()), (Some(1990), Some("Memory cgroup out of memory")));
    assert_eq!(chosen.lines.len(), 2, "the sacrifice-child line and the kill line");
    let h = header(chosen);
    assert_eq!(h.nodemask.as_deref(), Some("(null)"));
    assert_eq!(h.gfp_mask.as_deref(), Some("0x6000c0(GFP_KERNEL)"));
    assert_eq!(h.stats_cgroup.as_deref(), Some("/pod"), "the first block is the OOM memcg's own");
    assert_eq!(stat(h, "rss"), Some("0KB"));
    assert_eq!(h.memory_stat.len(), 12);
    assert!(h.lines.iter().any(|l| l.starts_with("Memory cgroup stats for /pod/app:")));
    assert!(!h.lines.iter().any(|l| l.starts_with("IPv6:")), "unrelated lines are not kept");
    assert_eq!(cell(&h.tasks[1], "name"), "sidecar proxy");
    assert_eq!(kills[1].comm, "sidecar proxy");
    assert!(kills[1..4]
        .iter()
        .all(|k| k.reason.is_none()
            && Arc::ptr_eq(k.header.as_ref().unwrap(), chosen.header.as_ref().unwrap())));
    let late = kills[4];
    assert_eq!(
        (late.header.is_none(), late.score, late.reason.as_deref()),
        (true, Some(1990), Some("Memory cgroup out of memory"))
    );
    let Item::Reaped(r) = &items[4] else { panic!("{:?}", items[4]) };
    assert_eq!((r.pid, r.comm.as_str(), r.anon_rss_kb), (4001, "app", 0));
    assert_eq!((stats.unrelated_lines, stats.unparsed_lines, stats.group_members), (1, 0, 3));
}

#[test]
fn shapes_of_4_14_memcg_global_and_sacrificed_child() {
    let (items, stats) = run_text(SHAPE_4_14);
    let kills = kills_in(&items);
    assert_eq!(kills.iter().map(|k| k.pid).collect::<Vec<_>>(), [2345, 3001, 3000]);
    let memcg = header(kills[0]);
    assert_eq!((memcg.cpuset.as_deref(), memcg.mems_allowed.as_deref()), (Some("/"), Some("0")));
    assert_eq!(
        (memcg.task_cgroup.as_deref(), memcg.oom_cgroup.as_deref()),
        (Some("/docker/abc"), Some("/docker/abc"))
    );
    assert_eq!(memcg.memsw, Some(Usage { usage_kb: 524288, limit_kb: 1048576, failcnt: 0 }));
    assert_eq!(stat(memcg, "active_anon"), Some("520476KB"));
    assert_eq!(memcg.task_columns[5..7], ["nr_ptes", "nr_pmds"]);
    assert_eq!(memcg.tasks.len(), 2);
    assert_eq!(kills[0].score, Some(993));
    assert_eq!(kills[0].figures.shmem_rss_kb, Some(0));
    assert_eq!(kills[0].figures.uid, None);

    // The kernel selected 3000 and sacrificed its child 3001: no score for 3001.
    let global = kills[1];
    assert_eq!((global.score, global.reason.as_deref()), (None, Some("Out of memory")));
    let h = header(global);
    assert!(h.lines.iter().any(|l| l == "Swap cache stats: add 0, delete 0, find 0/0"));
    assert_eq!(cell(&h.tasks[0], "oom_score_adj"), "-1000");
    assert_eq!(h.memory, None);
    let limited = kills[2];
    assert_eq!((limited.header.is_none(), limited.score), (true, Some(801)));
    assert_eq!(
        (stats.reaped, stats.unrelated_lines, stats.kills_without_header, stats.unparsed_lines),
        (1, 1, 1, 0)
    );
}

#[test]
fn shapes_of_rhel7_and_rhel6() {
    let (items, stats) = run_text(SHAPE_3_10);
    let kills = kills_in(&items);
    assert_eq!(kills.len(), 1);
    let k = kills[0];
    assert_eq!(
        (k.pid, k.comm.as_str(), k.figures.uid, k.figures.total_vm_kb, k.score),
        (21966, "java", Some(1000), Some(33027492), Some(1000))
    );
    let h = header(k);
    assert_eq!((h.cpu, h.trigger_pid, h.trigger_comm.as_deref()), (Some(14), Some(21966), Some("java")));
    assert_eq!(h.gfp_mask.as_deref(), Some("0x201da"));
    assert_eq!(h.oom_cgroup.as_deref(), Some("/system.slice/app.service"));
    assert_eq!(h.tasks.len(), 2);
    assert_eq!(cell(&h.tasks[0], "pid"), "21966");
    assert_eq!(stats.unparsed_lines, 0);

    let (items, stats) = run_text(SHAPE_2_6_32);
    let kills = kills_in(&items);
    assert_eq!(kills.len(), 1);
    let k = kills[0];
    assert_eq!(
        (k.pid, k.comm.as_str(), k.figures.uid, k.figures.file_rss_kb, k.figures.shmem_rss_kb),
        (4321, "java", Some(500), Some(164), None)
    );
    let h = header(k);
    assert_eq!((h.trigger_pid, h.trigger_oom_score_adj, h.cpu), (Some(4321), Some(0), None));
    assert_eq!(h.task_columns[5..7], ["cpu", "oom_adj"]);
    assert_eq!(cell(&h.tasks[0], "oom_adj"), "-17");
    assert!(h.lines.iter().any(|l| l == "CPU    0: hi:    0, btch:   1 usd:   0"));
    assert_eq!((stats.report_lines, stats.unrelated_lines, stats.unparsed_lines), (24, 0, 0));
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.lines().map(|text| Line { usec: None, text }).collect()
}

const SHORT_HEADER: &str = "\
Web Content invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
CPU: 1 UID: 1000 PID: 4242 Comm: Web Content Not tainted 6.11.0 #1
memory: usage 1024kB, limit 1024kB, failcnt 1
swap: usage 0kB, limit 0kB, failcnt 0
Memory cgroup stats for /user.slice/app-firefox.scope:
anon 1048576
Tasks state (memory values in pages):
[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name
[   4242]  1000  4242     1000      256      256        0         0    40960        0           100 Web Content
[   4243]  1000  4243     1000      256      256        0         0    40960        0           100 kworker/u8:2-events (x)
oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/user.slice/app-firefox.scope,task_memcg=/user.slice/app-firefox.scope,task=kworker/u8:2-ev,pid=4243,uid=1000";

#[test]
fn comms_with_spaces_parens_and_dots_and_the_6_11_uid() {
    let text = format!(
        "{SHORT_HEADER}\nMemory cgroup out of memory: Killed process 4243 (kworker/u8:2-events (x)) total-vm:4000kB, \
         anon-rss:1024kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:40kB oom_score_adj:100\n\
         Memory cgroup out of memory: Killed process 4242 (Web Content) total-vm:4000kB, anon-rss:1024kB, \
         file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:40kB oom_score_adj:100\n\
         Out of memory: Killed process 77 (a.b.c) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, \
         UID:0 pgtables:4kB oom_score_adj:0"
    );
    let (items, stats) = run(&lines(&text));
    let kills = kills_in(&items);
    assert_eq!(
        kills.iter().map(|k| k.comm.as_str()).collect::<Vec<_>>(),
        ["kworker/u8:2-events (x)", "Web Content", "a.b.c"]
    );
    let h = header(kills[0]);
    assert_eq!(h.trigger_comm.as_deref(), Some("Web Content"));
    assert_eq!((h.cpu, h.trigger_uid, h.trigger_pid), (Some(1), Some(1000), Some(4242)));
    assert_eq!(cell(&h.tasks[1], "name"), "kworker/u8:2-events (x)");
    assert_eq!(h.chosen_comm.as_deref(), Some("kworker/u8:2-ev"));
    // The header closed at its kill: the next kill line is rate-limited.
    assert_eq!((kills[1].header.as_ref(), kills[2].header.as_ref()), (None, None));
    assert_eq!(stats.kills_without_header, 2);
}

#[test]
fn unrelated_lines_interleaved_do_not_break_a_report() {
    let noise = [
        "eth0: link up",
        "EXT4-fs (vda): mounted filesystem",
        "audit: type=1400 audit(1.2:3): apparmor=\"DENIED\"",
        "[drm] Initialized",
        "usb 1-1: new high-speed USB device number 2 using xhci_hcd",
    ];
    let mut text = Vec::new();
    for (i, line) in SHORT_HEADER.lines().enumerate() {
        text.push(line);
        text.push(noise[i % noise.len()]);
    }
    text.push("Memory cgroup out of memory: Killed process 4243 (kworker/u8:2-events (x)) total-vm:4000kB, anon-rss:1024kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:40kB oom_score_adj:100");
    let (items, stats) = run(&lines(&text.join("\n")));
    let kills = kills_in(&items);
    assert_eq!(kills.len(), 1);
    let h = header(kills[0]);
    assert_eq!(h.lines, SHORT_HEADER.lines().collect::<Vec<_>>(), "only the report's lines are kept");
    assert_eq!((h.memory_stat.len(), h.tasks.len(), h.chosen_pid), (1, 2, Some(4243)));
    assert_eq!(stats.unrelated_lines, SHORT_HEADER.lines().count() as u64);
    assert_eq!(stats.unparsed_lines, 0);
}

#[test]
fn a_report_cut_by_a_ring_buffer_wrap() {
    // The start was lost: the header opens at the first line only an OOM
    // report prints, marked truncated.
    let tail: Vec<&str> = SHORT_HEADER.lines().skip(4).collect();
    let mut text = tail.join("\n");
    text.push_str("\nMemory cgroup out of memory: Killed process 4243 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB");
    let (items, stats) = run(&lines(&text));
    let kills = kills_in(&items);
    let h = header(kills[0]);
    assert!(h.truncated);
    assert_eq!(
        (h.trigger_comm.as_ref(), h.stats_cgroup.as_deref()),
        (None, Some("/user.slice/app-firefox.scope"))
    );
    assert_eq!(h.tasks.len(), 2);
    assert_eq!((stats.headers, stats.truncated_headers), (1, 1));

    // The end was lost: the header never meets its kill and is dropped, not
    // given to the next report's kill.
    let head: Vec<&str> = SHORT_HEADER.lines().take(6).collect();
    let text =
        format!("{}\n{SHORT_HEADER}\nOut of memory: Killed process 4243 (x) total-vm:1kB", head.join("\n"));
    let (items, stats) = run(&lines(&text));
    assert_eq!(header(kills_in(&items)[0]).lines.len(), SHORT_HEADER.lines().count());
    assert_eq!((stats.headers, stats.stale_headers), (2, 1));

    // Cut at the end of input: finish() counts it.
    let (items, stats) = run(&lines(&head.join("\n")));
    assert!(items.is_empty());
    assert_eq!(stats.stale_headers, 1);
}

#[test]
fn a_header_whose_own_kill_was_never_printed_is_stale() {
    let text = format!("{SHORT_HEADER}\nOut of memory: Killed process 999 (other) total-vm:1kB");
    let (items, stats) = run(&lines(&text));
    assert_eq!(kills_in(&items)[0].header, None);
    assert_eq!(stats.stale_headers, 1);
}

#[test]
fn rate_limited_kills_carry_only_their_line() {
    let text = "\
Memory cgroup out of memory: Killed process 10 (a) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, UID:5 pgtables:6kB oom_score_adj:7
Memory cgroup out of memory: Killed process 11 (b) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB
Out of memory: Killed process 12 (c) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, UID:5 pgtables:6kB oom_score_adj:-7";
    let mut parser = Parser::new();
    let mut all = Vec::new();
    for (i, text) in text.lines().enumerate() {
        let items = parser.push(Line { usec: Some(i as u64), text });
        assert_eq!(items.len(), 1, "a kill is emitted at its own line");
        all.extend(items);
    }
    let kills = kills_in(&all);
    assert!(kills.iter().all(|k| k.header.is_none() && k.lines.len() == 1 && !k.group_member));
    // 5.1 to 5.3: no UID, pgtables, oom_score_adj.
    assert_eq!(
        (kills[1].figures.uid, kills[1].figures.pgtables_kb, kills[1].figures.oom_score_adj),
        (None, None, None)
    );
    assert_eq!((kills[2].figures.oom_score_adj, kills[2].usec), (Some(-7), Some(2)));
    assert_eq!(parser.stats().kills_without_header, 3);
}

#[test]
fn reaped_and_exiting_lines() {
    let text = "\
oom_reaper: reaped process 4243 (Web Content), now anon-rss:0kB, file-rss:12kB, shmem-rss:4kB
Memory cgroup out of memory: OOM victim 77 (Web Content) is already exiting. Skip killing the task
OOM victim 78 (java) is already exiting
oom_reaper: unable to reap pid:79 (x)
oom_reaper: something new";
    let (items, stats) = run(&lines(text));
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0],
        Item::Reaped(Reaped {
            usec: None,
            pid: 4243,
            comm: "Web Content".into(),
            anon_rss_kb: 0,
            file_rss_kb: 12,
            shmem_rss_kb: 4
        })
    );
    let Item::Exiting(e) = &items[1] else { panic!() };
    assert_eq!((e.pid, e.comm.as_str(), e.header.as_ref()), (77, "Web Content", None));
    assert_eq!(e.line, text.lines().nth(1).unwrap());
    let Item::Exiting(e) = &items[2] else { panic!() };
    assert_eq!((e.pid, e.reason.as_ref()), (78, None));
    assert_eq!((stats.reaped, stats.exiting, stats.reap_failures, stats.unparsed_lines), (1, 2, 1, 1));
}

#[test]
fn a_group_ends_at_a_kill_that_cannot_be_a_member() {
    let text = format!(
        "{SHORT_HEADER}
Memory cgroup out of memory: Killed process 4243 (x) total-vm:1kB
Tasks in /user.slice/app-firefox.scope are going to be killed due to memory.oom.group set
Memory cgroup out of memory: Killed process 4242 (Web Content) total-vm:1kB
Memory cgroup out of memory: Killed process 5000 (not in the table) total-vm:1kB
Memory cgroup out of memory: Killed process 4242 (Web Content) total-vm:1kB"
    );
    let (items, stats) = run(&lines(&text));
    let kills = kills_in(&items);
    assert_eq!(
        kills.iter().map(|k| (k.pid, k.group_member, k.header.is_some())).collect::<Vec<_>>(),
        [(4243, false, true), (4242, true, true), (5000, false, false), (4242, false, false)]
    );
    assert_eq!(stats.group_members, 1);

    // Without a header (rate-limited) the group still names its members.
    let text = "\
Memory cgroup out of memory: Killed process 1 (a) total-vm:1kB
Tasks in /g are going to be killed due to memory.oom.group set
Memory cgroup out of memory: Killed process 2 (b) total-vm:1kB
Out of memory: Killed process 3 (c) total-vm:1kB";
    let (items, _) = run(&lines(text));
    let kills = kills_in(&items);
    assert_eq!(
        kills.iter().map(|k| (k.pid, k.group_member)).collect::<Vec<_>>(),
        [(1, false), (2, true), (3, false)]
    );
    assert_eq!(kills[1].group_cgroup.as_deref(), Some("/g"));
}

#[test]
fn one_line_and_embedded_newline_stats() {
    let text = "x invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=0
Memory cgroup stats for /x: cache:0KB rss:2048KB mapped_file:0KB
Killed process 5 (x) total-vm:1kB, anon-rss:2kB, file-rss:3kB";
    let (items, _) = run(&lines(text));
    let h = header(kills_in(&items)[0]).clone();
    assert_eq!(
        h.memory_stat,
        [
            ("cache".into(), "0KB".into()),
            ("rss".into(), "2048KB".into()),
            ("mapped_file".into(), "0KB".into())
        ]
    );

    // A 5.3-6.4 memory.stat record fed whole.
    let mut parser = Parser::new();
    parser.push(Line {
        usec: None,
        text: "x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    });
    parser.push(Line { usec: None, text: "Memory cgroup stats for /x:\nanon 4096\nfile 0\n" });
    assert_eq!(parser.stats().report_lines, 4, "the trailing newline is not a line");
    let items = parser
        .push(Line { usec: None, text: "Memory cgroup out of memory: Killed process 5 (x) total-vm:1kB" });
    let h = header(kills_in(&items)[0]).clone();
    assert_eq!(h.stats_cgroup.as_deref(), Some("/x"));
    assert_eq!(h.memory_stat.len(), 2);
    assert_eq!(parser.stats().lines, 3);
}

#[test]
fn malformed_report_lines_are_kept_and_counted() {
    let text = "x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=zero, oom_score_adj=0
memory: usage 12kB, limit lots, failcnt 0
Tasks state (memory values in pages):
[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name
[   12]     0    12 truncated
oom-kill:constraint=CONSTRAINT_MEMCG
Killed process 12 (x) total-vm:many";
    let (items, stats) = run(&lines(text));
    let kill = kills_in(&items)[0];
    let h = header(kill);
    assert_eq!(h.lines.len(), 6);
    assert_eq!(h.tasks.len(), 0);
    assert_eq!(h.memory, None);
    assert_eq!(kill.figures.total_vm_kb, None);
    assert_eq!(stats.unparsed_lines, 5);
    assert_eq!(stats.report_lines, 7);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn real_lines() -> Vec<&'static str> {
        [V1_6_18, V2_6_12, SHAPE_6_19, SHAPE_4_19, SHAPE_4_14, SHAPE_2_6_32]
            .iter()
            .flat_map(|t| fixture(t))
            .map(|l| l.text)
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// A real line, cut at a random byte and/or with a random byte changed.
    fn mutated_line() -> impl Strategy<Value = String> {
        let all = real_lines();
        (0..all.len(), any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>(), 0..3u8)
            .prop_map(move |(i, cut, at, byte, how)| {
                let mut bytes = all[i].as_bytes().to_vec();
                if how != 1 {
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                if how != 0 && !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
    }

    fn any_line() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => mutated_line(),
            1 => any::<String>(),
            1 => prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            1 => prop::sample::select(real_lines()).prop_map(str::to_owned),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

        #[test]
        fn no_input_panics_and_every_line_is_counted(input in prop::collection::vec(any_line(), 0..160)) {
            let mut parser = Parser::new();
            let mut kills = 0;
            for (i, text) in input.iter().enumerate() {
                let items = parser.push(Line { usec: Some(i as u64), text });
                kills += items.iter().filter(|item| matches!(item, Item::Kill(_))).count() as u64;
            }
            let _ = parser.finish();
            let stats = parser.stats();
            prop_assert_eq!(stats.lines, input.len() as u64);
            let pieces: u64 = input.iter().map(|l| l.trim_end_matches(['\n', '\r']).split('\n').count() as u64).sum();
            prop_assert_eq!(stats.report_lines + stats.unrelated_lines, pieces);
            prop_assert_eq!(stats.kills, kills);
            prop_assert!(stats.unparsed_lines <= stats.report_lines);
        }
    }
}
