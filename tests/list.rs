//! `list` filters, `--json-lines`, `stats`, `watch` and the query plans,
//! against real SQLite files written through the daemon's own write path
//! (`Store::record`). No kernel needed.
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use oomrecorder::{
    model::{identity::Identity, Figures, Kill, Oom, Source, Victim},
    store::{self, Access, Filter, Order, Store},
};
use serde_json::Value;
use support::*;

const BOOT_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const BOOT_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const CONTAINER_WEB: &str = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
const CONTAINER_WORKER: &str = "0099887766554433221100998877665544332211009988776655443322110099";

const MINUTE: i64 = 60_000_000_000;

struct Spec {
    pid: i32,
    comm: &'static str,
    ago_min: i64,
    boot: &'static str,
    cgroup: &'static str,
    constraint: Option<&'static str>,
    container: Option<Identity>,
}

fn kill(spec: &Spec, now: i64) -> Kill {
    Kill {
        time_ns: Some(now - spec.ago_min * MINUTE),
        boot_id: Some(spec.boot.into()),
        boot_ns: Some(1_000_000 + spec.pid as u64),
        recorded_ns: now,
        sources: vec![Source::Ebpf],
        victim: Victim {
            pid: spec.pid,
            comm: Some(spec.comm.into()),
            figures: Figures { anon_rss_kb: Some(1024), ..Figures::default() },
            ..Victim::default()
        },
        cgroup: Some(spec.cgroup.into()),
        oom: Oom { constraint: spec.constraint.map(str::to_owned), ..Oom::default() },
        container: spec.container.clone(),
        ..Kill::default()
    }
}

/// Four kills on two boots (neither the running one): a unit's 3 days ago on
/// boot A, two containers' in pods and a plain process's in the last 2 hours
/// on boot B. Each filter below must pick exactly its rows.
fn fixture(path: &Path) {
    let now = now_ns();
    let specs = [
        Spec {
            pid: 101,
            comm: "alpha",
            ago_min: 3 * 24 * 60,
            boot: BOOT_A,
            cgroup: "/system.slice/alpha.service",
            constraint: Some("CONSTRAINT_MEMCG"),
            container: Some(Identity { unit: Some("alpha.service".into()), ..Identity::default() }),
        },
        Spec {
            pid: 102,
            comm: "beta",
            ago_min: 120,
            boot: BOOT_B,
            cgroup: "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abcdef.scope",
            constraint: Some("CONSTRAINT_MEMCG"),
            container: Some(Identity {
                id: Some(CONTAINER_WEB.into()),
                container_name: Some("web".into()),
                pod_name: Some("web-1".into()),
                pod_namespace: Some("shop".into()),
                ..Identity::default()
            }),
        },
        Spec {
            pid: 103,
            comm: "beta",
            ago_min: 60,
            boot: BOOT_B,
            cgroup: "/batch/worker%_x",
            constraint: Some("CONSTRAINT_NONE"),
            container: Some(Identity {
                id: Some(CONTAINER_WORKER.into()),
                container_name: Some("worker".into()),
                pod_name: Some("worker-7".into()),
                pod_namespace: Some("batch".into()),
                ..Identity::default()
            }),
        },
        Spec {
            pid: 104,
            comm: "gamma",
            ago_min: 30,
            boot: BOOT_B,
            cgroup: "/user.slice/user-1000.slice/session-2.scope",
            constraint: None,
            container: None,
        },
    ];
    let mut store = Store::open(path, Access::ReadWrite).unwrap();
    for spec in &specs {
        store.insert(&kill(spec, now)).unwrap();
    }
}

/// `oomrecorder watch ARGS --db PATH`, and its stdout's lines as a thread
/// reads them.
fn spawn_watch(
    path: &Path,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<std::io::Result<String>>) {
    let mut child = Command::new(BIN)
        .arg("watch")
        .args(args)
        .arg("--db")
        .arg(path)
        .env_remove("OOMRECORDER_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines_rx)
}

/// A kill stored now, after `watch` started, in cgroup `/late`.
fn late(pid: i32, comm: &'static str) -> Kill {
    let spec =
        Spec { pid, comm, ago_min: 0, boot: BOOT_B, cgroup: "/late", constraint: None, container: None };
    kill(&spec, now_ns())
}

fn pids(db: &str, args: &[&str]) -> Vec<i64> {
    let mut all = vec!["list", "--json", "--db", db];
    all.extend_from_slice(args);
    cli_json(&all).as_array().unwrap().iter().map(|r| r["pid"].as_i64().unwrap()).collect()
}

fn pid_set(db: &str, args: &[&str]) -> BTreeSet<i64> {
    pids(db, args).into_iter().collect()
}

#[test]
fn each_filter_selects_exactly_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let db = path.to_str().unwrap();
    let cases: &[(&[&str], &[i64])] = &[
        (&[], &[101, 102, 103, 104]),
        (&["--since", "1d"], &[102, 103, 104]),
        (&["--until", "90m"], &[101, 102]),
        (&["--since", "3h", "--until", "45m"], &[102, 103]),
        (&["--comm", "beta"], &[102, 103]),
        (&["--pid", "104"], &[104]),
        (&["--cgroup", "kubepods"], &[102]),
        // `%` and `_` are plain characters, not LIKE wildcards.
        (&["--cgroup", "worker%_"], &[103]),
        (&["--cgroup", "r%_"], &[103]),
        (&["--cgroup", "user-1000"], &[104]),
        (&["--container", "abcdef01"], &[102]),
        (&["--container", "worker"], &[103]),
        (&["--container", "0123"], &[]),
        (&["--pod", "web-1"], &[102]),
        (&["--namespace", "batch"], &[103]),
        (&["--unit", "alpha.service"], &[101]),
        (&["--boot", "-1"], &[102, 103, 104]),
        (&["--boot", "-2"], &[101]),
        (&["--boot", BOOT_A], &[101]),
        (&["--boot", "0"], &[]),
        (&["--global"], &[103]),
        (&["--memcg"], &[101, 102]),
        (&["--comm", "beta", "--memcg"], &[102]),
        (&["--pod", "web-1", "--since", "1d"], &[102]),
    ];
    for (args, want) in cases {
        let want: BTreeSet<i64> = want.iter().copied().collect();
        assert_eq!(pid_set(db, args), want, "list {args:?}");
    }
}

/// Filter values are bound parameters: quotes and SQL in them are matched
/// as text, never run.
#[test]
fn filter_values_are_data_not_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let db = path.to_str().unwrap();
    for hostile in ["x' OR '1'='1", "beta'; DROP TABLE kills; --", "\"", "%%"] {
        for flag in ["--comm", "--cgroup", "--container", "--pod", "--namespace", "--unit"] {
            assert_eq!(pid_set(db, &[flag, hostile]), BTreeSet::new(), "{flag} {hostile}");
        }
    }
    assert_eq!(pids(db, &[]).len(), 4, "the table is intact");
}

#[test]
fn order_limit_and_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let db = path.to_str().unwrap();
    assert_eq!(pids(db, &[]), [104, 103, 102, 101], "newest first");
    assert_eq!(pids(db, &["--limit", "2"]), [104, 103]);
    assert_eq!(pids(db, &["--reverse"]), [101, 102, 103, 104], "oldest first");
    assert_eq!(pids(db, &["--reverse", "-n", "1"]), [101]);
}

#[test]
fn json_lines_are_the_json_rows_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let db = path.to_str().unwrap();
    let array = cli_json(&["list", "--json", "--db", db]);
    let out = cli(&["list", "--json-lines", "--db", db]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(&rows[..], array.as_array().unwrap().as_slice(), "same rows, same keys");
    for row in &rows {
        for key in LIST_ROW_KEYS {
            assert!(row.get(key).is_some(), "row lacks {key}: {row}");
        }
    }
    assert_eq!(rows[2]["pod_name"], "web-1");
    assert_eq!(rows[2]["container_id"], CONTAINER_WEB);
}

#[test]
fn the_table_shows_container_and_pod_columns_and_a_pipe_cuts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let db = path.to_str().unwrap();
    let text = String::from_utf8(cli(&["list", "--db", db]).stdout).unwrap();
    assert!(text.contains("CONTAINER") && text.contains("POD"), "{text}");
    assert!(text.contains("shop/web-1") && text.contains("worker"), "{text}");
    assert!(text.contains("/kubepods.slice/kubepods-pod1.slice/cri-containerd-abcdef.scope"), "{text}");
    let plain = String::from_utf8(cli(&["list", "--db", db, "--unit", "nothing"]).stdout).unwrap();
    assert!(!plain.contains("CONTAINER"), "{plain}");
    let one = String::from_utf8(cli(&["list", "--db", db, "--comm", "gamma"]).stdout).unwrap();
    assert!(!one.contains("CONTAINER") && one.contains("gamma"), "no row has a container: {one}");
}

#[test]
fn a_malformed_since_exits_2_naming_the_accepted_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    for command in ["list", "stats"] {
        let out = cli(&[command, "--since", "last tuesday", "--db", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("last tuesday"), "{stderr}");
        assert!(stderr.contains(oomrecorder::cli::when::FORMS), "{command} must name every form: {stderr}");
    }
    let out = cli(&["list", "--boot", "-9", "--db", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only 2 earlier boot"));
}

#[test]
fn stats_json_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let db = path.to_str().unwrap();
    let stats = cli_json(&["stats", "--json", "--db", db]);
    assert_eq!(
        (&stats["total"], &stats["memcg"], &stats["global"], &stats["unknown_constraint"]),
        (&Value::from(4), &Value::from(2), &Value::from(1), &Value::from(1)),
        "{stats:#}"
    );
    assert_eq!(stats["comms"][0], serde_json::json!({"comm": "beta", "kills": 2}));
    assert_eq!(stats["comms"].as_array().unwrap().len(), 3);
    assert_eq!(
        stats["containers"],
        serde_json::json!([
            {"container_id": CONTAINER_WORKER, "container_name": "worker", "kills": 1},
            {"container_id": CONTAINER_WEB, "container_name": "web", "kills": 1},
        ])
    );
    assert_eq!(
        stats["pods"],
        serde_json::json!([
            {"pod_name": "web-1", "pod_namespace": "shop", "kills": 1},
            {"pod_name": "worker-7", "pod_namespace": "batch", "kills": 1},
        ])
    );
    assert_eq!(stats["units"], serde_json::json!([{"unit": "alpha.service", "kills": 1}]));
    assert!(stats["since"].is_null() && stats["until"].is_null());

    let recent = cli_json(&["stats", "--json", "--since", "1d", "--top", "1", "--db", db]);
    assert_eq!(recent["total"], 3);
    assert_eq!(recent["units"], serde_json::json!([]));
    assert_eq!(recent["comms"], serde_json::json!([{"comm": "beta", "kills": 2}]), "--top 1");
    assert!(recent["since"].is_string());

    let text = String::from_utf8(cli(&["stats", "--db", db]).stdout).unwrap();
    assert!(text.contains("4 kills: 2 memory cgroup, 1 global, 1 not known"), "{text}");
    assert!(text.contains("shop/web-1") && text.contains("web (abcdef012345)"), "{text}");
}

#[test]
fn watch_prints_a_record_stored_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    // The daemon's connection stays open while watch reads, as in service.
    let mut store = Store::open(&path, Access::ReadWrite).unwrap();
    let (mut child, lines_rx) = spawn_watch(&path, &["--json-lines"]);
    // watch shows only what lands after it started, and cannot say when it
    // has: keep storing new kills until one is printed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stored = BTreeSet::new();
    let line = loop {
        assert!(Instant::now() < deadline, "watch printed nothing for new records {stored:?}");
        let pid = 500 + stored.len() as i32;
        store.insert(&late(pid, "late")).unwrap();
        stored.insert(i64::from(pid));
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(600)) {
            break line.unwrap();
        }
    };
    let row: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(row["comm"], "late", "only new records: {row}");
    assert!(stored.contains(&row["pid"].as_i64().unwrap()));
    assert!(row.get("container_id").is_some() && row.get("time").is_some());

    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGINT is how watch is meant to stop");
    // Every line it printed was a new record, each once.
    let rest: Vec<Value> = lines_rx.try_iter().map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
    let mut seen: Vec<i64> = rest.iter().map(|r| r["pid"].as_i64().unwrap()).collect();
    seen.push(row["pid"].as_i64().unwrap());
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a record printed twice: {seen:?}");
}

#[test]
fn watch_ends_with_success_when_its_reader_goes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let mut store = Store::open(&path, Access::ReadWrite).unwrap();
    let mut child = Command::new(BIN)
        .args(["watch", "--db"])
        .arg(&path)
        .env_remove("OOMRECORDER_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The table's header comes at once: watch is running.
    let mut header = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut header).unwrap();
    assert!(header.contains("COMM") && header.contains("ANON RSS"), "{header}");
    // The reader is gone (dropped above); the next record's write finds the
    // pipe closed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pid = 700;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "watch kept running with nobody reading");
        store.insert(&late(pid, "late")).unwrap();
        pid += 1;
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(status.code(), Some(0), "a closed pipe is success");
}

/// The plans of the queries `list` and `stats` run most: each reads through
/// an index, and a list's order comes from the index, not a sort.
#[test]
fn list_and_stats_queries_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let store = Store::open(&path, Access::ReadOnly).unwrap();
    let day_ago = now_ns() - 24 * 60 * MINUTE;
    let check = |what: &str, (sql, params): (String, Vec<rusqlite::types::Value>), index: &str| {
        let plan = store.query_plan(&sql, &params).unwrap();
        let text = plan.join("\n");
        eprintln!("{what}: {sql}\n{text}\n");
        assert!(text.contains(index), "{what} must use {index}:\n{text}");
        assert!(
            !plan.iter().any(|step| step.trim() == "SCAN kills"),
            "{what} reads the whole table:\n{text}"
        );
        text
    };
    let newest = Filter { limit: Some(50), ..Filter::default() };
    let text = check("newest 50", newest.list_sql(), "INDEX kills_by_time");
    assert!(!text.contains("TEMP B-TREE"), "newest first must not sort:\n{text}");

    let pod =
        Filter { limit: Some(50), pod: Some("web-1".into()), since_ns: Some(day_ago), ..Filter::default() };
    let text = check("--pod --since", pod.list_sql(), "INDEX kills_by_pod_time (pod_name=? AND time_ns>?)");
    assert!(!text.contains("TEMP B-TREE"), "{text}");

    let reverse = Filter { limit: Some(50), order: Order::OldestFirst, ..Filter::default() };
    check("--reverse", reverse.list_sql(), "INDEX kills_by_time");

    let boot = Filter { limit: Some(50), boot_id: Some(BOOT_B.into()), ..Filter::default() };
    check("--boot", boot.list_sql(), "INDEX kills_by_boot_time (boot_id=?)");

    let watch = Filter { after_id: Some(3), order: Order::Stored, ..Filter::default() };
    check("watch", watch.list_sql(), "INTEGER PRIMARY KEY (rowid>?)");

    let week = Filter { since_ns: Some(now_ns() - 7 * 24 * 60 * MINUTE), ..Filter::default() };
    check(
        "stats --since 7d",
        store::stats_sql(&week),
        "SEARCH kills USING COVERING INDEX kills_for_stats (time_ns>?)",
    );
    check("stats", store::stats_sql(&Filter::default()), "COVERING INDEX kills_for_stats");
}

/// A kill known only from its kernel line (the report's header was
/// rate-limited) says which OOM it was by its reason: `stats` and the
/// `--memcg`/`--global` filters count it as such, not as unknown.
#[test]
fn kills_known_only_by_their_kill_line_are_classified_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    let now = now_ns();
    let mut store = Store::open(&path, Access::ReadWrite).unwrap();
    for (pid, reason) in
        [(201, "Memory cgroup out of memory"), (202, "Memory cgroup out of memory"), (203, "Out of memory")]
    {
        let spec = Spec {
            pid,
            comm: "lone",
            ago_min: 5,
            boot: BOOT_B,
            cgroup: "/x",
            constraint: None,
            container: None,
        };
        let mut kill = kill(&spec, now);
        kill.sources = vec![Source::Kmsg];
        kill.oom.reason = Some(reason.into());
        store.insert(&kill).unwrap();
    }
    drop(store);
    let db = path.to_str().unwrap();
    let stats = cli_json(&["stats", "--json", "--db", db]);
    assert_eq!(
        (&stats["total"], &stats["memcg"], &stats["global"], &stats["unknown_constraint"]),
        (&Value::from(3), &Value::from(2), &Value::from(1), &Value::from(0)),
        "{stats:#}"
    );
    assert_eq!(pid_set(db, &["--memcg"]), BTreeSet::from([201, 202]));
    assert_eq!(pid_set(db, &["--global"]), BTreeSet::from([203]));
    let id = cli_json(&["list", "--json", "--pid", "203", "--db", db])[0]["id"].to_string();
    let shown = cli_json(&["show", &id, "--json", "--db", db]);
    assert_eq!(shown["oom"]["scope"], "global", "{}", shown["oom"]);
}

/// `watch` takes `list`'s filters, and prints `list`'s columns: the same
/// header (CONTAINER and POD too, as the store has named containers).
#[test]
fn watch_takes_lists_filters_and_prints_lists_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let mut store = Store::open(&path, Access::ReadWrite).unwrap();
    let (mut child, lines_rx) = spawn_watch(&path, &["--comm", "wanted"]);
    let header = lines_rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
    let listed = String::from_utf8(cli(&["list", "--db", path.to_str().unwrap()]).stdout).unwrap();
    let words = |line: &str| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(&header), words(listed.lines().next().unwrap()), "watch: {header}\nlist: {listed}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pid = 900;
    let line = loop {
        assert!(Instant::now() < deadline, "watch printed no row for the wanted kills");
        for comm in ["other", "wanted"] {
            store.insert(&late(pid, comm)).unwrap();
            pid += 1;
        }
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(600)) {
            break line.unwrap();
        }
    };
    assert!(line.contains("wanted") && line.contains("/late"), "{line}");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let rest: Vec<String> = lines_rx.try_iter().map(|l| l.unwrap()).collect();
    assert!(rest.iter().all(|l| !l.contains("other")), "a filtered-out kill was printed: {rest:?}");
}

/// `stats` takes `list`'s filters: it counts the kills they select.
#[test]
fn stats_takes_lists_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oom.db");
    fixture(&path);
    let db = path.to_str().unwrap();
    let beta = cli_json(&["stats", "--json", "--comm", "beta", "--db", db]);
    assert_eq!(
        (&beta["total"], &beta["memcg"], &beta["global"]),
        (&Value::from(2), &Value::from(1), &Value::from(1))
    );
    let pod = cli_json(&["stats", "--json", "--namespace", "shop", "--db", db]);
    assert_eq!(pod["total"], 1);
    assert_eq!(cli_json(&["stats", "--json", "--memcg", "--db", db])["total"], 2);
}
