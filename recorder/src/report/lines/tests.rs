//! Each line shape on its own, from real and written report lines.

use super::*;

#[test]
fn invoked_lines_of_every_era() {
    let recent =
        invoked("Web Content invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0");
    assert_eq!(
        recent,
        Some(Invoked {
            comm: "Web Content",
            gfp_mask: Some("0xcc0(GFP_KERNEL)"),
            nodemask: None,
            order: Some(0),
            oom_score_adj: Some(0)
        })
    );
    let v4 = invoked(
        "java invoked oom-killer: gfp_mask=0x14000c0(GFP_KERNEL), nodemask=0-1,3, order=2, oom_score_adj=-998",
    )
    .unwrap();
    assert_eq!(v4.nodemask, Some("0-1,3"));
    assert_eq!((v4.order, v4.oom_score_adj), (Some(2), Some(-998)));
    let v2 = invoked("java invoked oom-killer: gfp_mask=0xd0, order=0, oom_adj=0, oom_scoe_adj=0").unwrap();
    assert!(v2.complete());
    assert_eq!(v2.gfp_mask, Some("0xd0"));
    assert!(!invoked("x invoked oom-killer: gfp_mask=0xd0").unwrap().complete());
    assert!(invoked("nothing to see").is_none());
}

#[test]
fn cpu_lines() {
    let v611 =
        cpu("CPU: 0 UID: 1000 PID: 8354 Comm: oomt-cbdb19 Not tainted 6.18.44 #1 PREEMPT(none) ").unwrap();
    assert_eq!(v611, Cpu { cpu: Some(0), uid: Some(1000), pid: Some(8354), comm: Some("oomt-cbdb19") });
    let old = cpu("CPU: 14 PID: 21966 Comm: Web Content Kdump: loaded Not tainted 3.10.0 #1").unwrap();
    assert_eq!(old, Cpu { cpu: Some(14), uid: None, pid: Some(21966), comm: Some("Web Content") });
    let tainted = cpu("CPU: 3 PID: 7 Comm: kworker/u8:2 Tainted: G           O      6.1.0 #1").unwrap();
    assert_eq!(tainted.comm, Some("kworker/u8:2"));
    let ancient = cpu("Pid: 2376, comm: mal-80 Not tainted 3.7.0+ #4").unwrap();
    assert_eq!((ancient.pid, ancient.comm), (Some(2376), Some("mal-80")));
    assert!(cpu("CPU    0: hi:    0, btch:   1 usd:   0").is_none());
}

#[test]
fn counters_and_usage() {
    let (c, rest) = counter("memory+swap: usage 65536kB, limit 9007199254740988kB, failcnt 3").unwrap();
    assert_eq!(c, Counter::MemSw);
    assert_eq!(usage(rest), Some(Usage { usage_kb: 65536, limit_kb: 9007199254740988, failcnt: 3 }));
    assert!(usage("65536kB, limit x").is_none());
    assert!(counter("tcp: usage 1kB").is_none());
}

#[test]
fn stats_blocks() {
    assert_eq!(stats_for("Memory cgroup stats for /a/b:"), Some(("/a/b", vec![])));
    let (path, pairs) =
        stats_for("Memory cgroup stats for /docker/x: y: cache:188KB rss:1048388KB unevictable:0KB ")
            .unwrap();
    assert_eq!(path, "/docker/x: y");
    assert_eq!(pairs, [("cache", "188KB"), ("rss", "1048388KB"), ("unevictable", "0KB")]);
    assert_eq!(stat_pair("total_inactive_file 123"), Some(("total_inactive_file", "123")));
    assert_eq!(stat_pair("eth0: link up"), None);
    assert_eq!(stat_pair("anon x"), None);
}

#[test]
fn task_tables() {
    let cols = task_columns(
        "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name",
    )
    .unwrap();
    assert_eq!(cols.len(), 12);
    let row = task_row(
        "[   1234]     0  1234    51760    16547    16320      227        0   225280        0         -1000 Web Content",
        cols.len(),
    )
    .unwrap();
    assert_eq!(row[0], "1234");
    assert_eq!(row[10], "-1000");
    assert_eq!(row[11], "Web Content");
    assert!(task_row("[   1234]     0  1234", cols.len()).is_none());
    assert!(task_row("[  abc]", 3).is_none());
    let old =
        task_columns("[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name").unwrap();
    assert_eq!(old[0], "pid");
    assert_eq!(old[5], "nr_ptes");
}

#[test]
fn summaries() {
    let s = summary(
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=0-1,3,cpuset=a,b,mems_allowed=0-1,oom_memcg=/k,p,\
         task_memcg=/k,p/c,task=x,y,pid=42,uid=1000",
    )
    .unwrap();
    assert_eq!(s.constraint, Some("CONSTRAINT_MEMCG"));
    assert_eq!(s.nodemask, Some("0-1,3"));
    assert_eq!(s.cpuset, Some("a,b"));
    assert_eq!(s.mems_allowed, Some("0-1"));
    assert_eq!(s.oom_memcg, Some("/k,p"));
    assert_eq!(s.task_memcg, Some("/k,p/c"));
    assert_eq!((s.task, s.pid, s.uid), (Some("x,y"), Some(42), Some(1000)));
    let g = summary(
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,\
         task_memcg=/user.slice,task=dd,pid=7,uid=0",
    )
    .unwrap();
    assert!(g.global_oom);
    assert_eq!(g.oom_memcg, None);
    assert_eq!(g.task_memcg, Some("/user.slice"));
    let bare = summary("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=dd,pid=7,uid=0").unwrap();
    assert_eq!(bare.nodemask, Some("(null)"));
    assert_eq!(bare.cpuset, None);
    assert!(summary("oom-kill:garbage").is_none());
}

#[test]
fn kill_lines_of_every_era() {
    let k = killed(
        "Memory cgroup out of memory: Killed process 7558 (a) total-vm:(b) total-vm:207776kB, anon-rss:65280kB, \
         file-rss:1676kB, shmem-rss:0kB, UID:1000 pgtables:172kB oom_score_adj:-17",
    )
    .unwrap();
    assert_eq!(k.reason, Some("Memory cgroup out of memory"));
    assert_eq!((k.pid, k.comm), (7558, "a) total-vm:(b"));
    assert_eq!(
        (k.figures.total_vm_kb, k.figures.anon_rss_kb, k.figures.file_rss_kb, k.figures.shmem_rss_kb),
        (Some(207776), Some(65280), Some(1676), Some(0))
    );
    assert_eq!(
        (k.figures.uid, k.figures.pgtables_kb, k.figures.oom_score_adj),
        (Some(1000), Some(172), Some(-17))
    );
    assert!(!k.bad_figure);

    let v4 =
        killed("Killed process 2345 (java) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB").unwrap();
    assert_eq!((v4.reason, v4.figures.uid, v4.figures.shmem_rss_kb), (None, None, Some(4)));
    let rhel7 =
        killed("Killed process 21945 (tidb-server), UID 1000, total-vm:33027492kB, anon-rss:31303276kB, file-rss:0kB, shmem-rss:0kB")
            .unwrap();
    assert_eq!(
        (rhel7.comm, rhel7.figures.uid, rhel7.figures.anon_rss_kb),
        ("tidb-server", Some(1000), Some(31303276))
    );
    let rhel6 = killed(
        "Killed process 215701, UID 679, (java) total-vm:11017300kB, anon-rss:7152432kB, file-rss:1232kB",
    )
    .unwrap();
    assert_eq!(
        (rhel6.pid, rhel6.comm, rhel6.figures.uid, rhel6.figures.shmem_rss_kb),
        (215701, "java", Some(679), None)
    );
    let bare = killed("Out of Memory: Killed process 2592 (mysql).").unwrap();
    assert_eq!((bare.pid, bare.comm, bare.figures.total_vm_kb), (2592, "mysql", None));
    assert!(killed("Killed process (x)").is_none());
    assert!(killed("Killed process 1 (x) total-vm:zkB").unwrap().bad_figure);
}

#[test]
fn selection_reaper_exiting() {
    let s =
        selected("Memory cgroup out of memory: Kill process 1234 (java (x)) score 1000 or sacrifice child")
            .unwrap();
    assert_eq!(
        (s.reason, s.pid, s.comm, s.score),
        (Some("Memory cgroup out of memory"), 1234, "java (x)", Some(1000))
    );
    assert!(sharing("Kill process 1235 (java) sharing same memory"));
    assert!(sharing("oom killer 12 (a) has mm pinned by 13 (b)"));
    let r = reaped("reaped process 7 (a), now b), now anon-rss:0kB, file-rss:4kB, shmem-rss:8kB").unwrap();
    assert_eq!((r.pid, r.comm, r.file_rss_kb, r.shmem_rss_kb), (7, "a), now b", 4, 8));
    assert!(reaped("reaped process 7 (a), now anon-rss:0kB").is_none());
    let e = exiting("Out of memory: OOM victim 9 (Web Content) is already exiting. Skip killing the task")
        .unwrap();
    assert_eq!((e.reason, e.pid, e.comm), (Some("Out of memory"), 9, "Web Content"));
    assert_eq!(exiting("OOM victim 9 (x) is already exiting").unwrap().reason, None);
}

#[test]
fn stack_and_meminfo_shapes() {
    for line in [
        " dump_stack_lvl+0x57/0x80",
        "RIP: 0010:read_zero+0x77/0xd0",
        "R13: ffff888140ca8900 R14: 0",
        "x29: 0",
        "pc : x",
        "Call Trace:",
    ] {
        assert!(stack_line(line), "{line}");
    }
    for line in ["eth0: link up", "EXT4-fs (vda): mounted", "random: crng init done"] {
        assert!(!stack_line(line), "{line}");
    }
    for line in [
        "Node 0 DMA free:15908kB",
        "262141 pages RAM",
        "lowmem_reserve[]: 0 2917",
        "kmalloc-2k  1234KB  2345KB",
    ] {
        assert!(meminfo_line(line), "{line}");
    }
    assert!(!meminfo_line("eth0: link up"));
}
