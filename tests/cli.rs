//! The command line against real SQLite files: JSON parsed back, exit codes,
//! broken pipes, and the daemon's refusals that must happen before it touches
//! anything. Records are written through the library's own store (the
//! daemon's write path); no kernel is needed except where a test says so.
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
};

use oomrecorder::{
    model::{Figures, Kill, Source, Trigger, Victim},
    store::{Access, Store},
};
use support::*;

/// An hour before this test binary started, on a whole second: the kills
/// of these tests are recent on any day the tests run (prune and
/// `--max-age` compare against the clock), and one base for the whole
/// binary keeps their times known to the assertions.
fn base_ns() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| (now_ns() / 1_000_000_000 - 3_600) * 1_000_000_000)
}

fn kill(pid: i32, boot_ns: u64, comm: Option<&str>) -> Kill {
    let base = base_ns();
    Kill {
        time_ns: Some(base + boot_ns as i64),
        boot_id: Some("90e19252-c4f3-4f33-b61e-680af3ffcadb".into()),
        boot_ns: Some(boot_ns),
        mono_ns: Some(boot_ns),
        recorded_ns: base + 1_000_000_000,
        sources: vec![Source::Ebpf],
        victim: Victim {
            pid,
            tgid: None,
            comm: comm.map(str::to_owned),
            figures: Figures {
                uid: Some(1000),
                total_vm_kb: Some(207_776),
                anon_rss_kb: Some(65_280),
                file_rss_kb: Some(1_676),
                shmem_rss_kb: Some(0),
                pgtables_kb: Some(172),
                oom_score_adj: Some(0),
            },
            cmdline: None,
            exe: None,
        },
        trigger: Trigger { pid: Some(1), tgid: Some(1), comm: Some("init".into()), ..Trigger::default() },
        ..Kill::default()
    }
}

fn db_with(path: &Path, kills: &[Kill]) {
    let mut store = Store::open(path, Access::ReadWrite).unwrap();
    for k in kills {
        store.insert(k).unwrap();
    }
}

#[test]
fn list_and_show_json_keep_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    db_with(&db, &[kill(10, 1_000, Some("older")), kill(11, 2_000, None)]);
    let db = db.to_str().unwrap();

    let list = cli_json(&["list", "--json", "--db", db]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for key in LIST_ROW_KEYS {
        assert!(rows[0].get(key).is_some(), "list row lacks {key}: {}", rows[0]);
    }
    assert_eq!(rows[0]["pid"], 11, "newest first");
    assert!(rows[0]["comm"].is_null(), "unknown comm must be null");
    assert!(rows[0]["cgroup"].is_null() && rows[0]["memory_limit_bytes"].is_null());
    // RFC 3339 in UTC to the millisecond: the kill 1 µs after a whole second.
    let whole_second = jiff::Timestamp::from_nanosecond(i128::from(base_ns())).unwrap();
    assert_eq!(rows[1]["time"], format!("{}.000Z", whole_second.strftime("%Y-%m-%dT%H:%M:%S")));
    assert_eq!(rows[1]["sources"], serde_json::json!(["ebpf"]));

    let limited = cli_json(&["list", "--json", "--limit", "1", "--db", db]);
    assert_eq!(limited.as_array().unwrap().len(), 1);

    let id = rows[1]["id"].to_string();
    let shown = cli_json(&["show", &id, "--json", "--db", db]);
    for key in ["id", "time", "boot_id", "sources", "victim", "trigger", "oom", "cgroup", "kernel_report"] {
        assert!(shown.get(key).is_some(), "show lacks {key}: {shown}");
    }
    for key in [
        "pid",
        "tgid",
        "comm",
        "uid",
        "total_vm_kb",
        "anon_rss_kb",
        "file_rss_kb",
        "shmem_rss_kb",
        "pgtables_kb",
        "oom_score_adj",
    ] {
        assert!(shown["victim"].get(key).is_some(), "victim lacks {key}");
    }
    assert_eq!(shown["victim"]["comm"], "older");
    assert!(shown["victim"]["tgid"].is_null(), "the tracepoint gives no victim tgid: null, not 0");
    assert_eq!(shown["victim"]["uid"], 1000);
    assert_eq!(shown["trigger"]["pid"], 1);
    assert_eq!(shown["trigger"]["comm"], "init");
    for key in ["uid", "gfp_mask", "order"] {
        assert!(shown["trigger"][key].is_null(), "no kernel report: trigger.{key} is null");
    }
    for key in [
        "reason",
        "constraint",
        "oom_cgroup",
        "task_cgroup",
        "memory_usage_kb",
        "memory_limit_kb",
        "failcnt",
        "swap_usage_kb",
        "swap_limit_kb",
        "memory_stat",
        "tasks",
        "reaped",
    ] {
        assert!(
            shown["oom"].get(key).is_some_and(|v| v.is_null()),
            "oom.{key} must be present and null: {}",
            shown["oom"]
        );
    }
    assert!(shown["kernel_report"]["lines"].as_array().unwrap().is_empty());
    // Kernel state read through BTF: keys present, null when the raw
    // tracepoint program did not read them (this record is tracepoint-only).
    for key in
        ["age_ms", "min_flt", "maj_flt", "swapents_kb", "rss_pages", "pgtables_bytes", "nodename", "badness"]
    {
        assert!(shown["victim"].get(key).is_some_and(|v| v.is_null()), "victim.{key}: {}", shown["victim"]);
    }
    for key in ["path", "id", "version", "at_kill", "ancestors"] {
        assert!(shown["cgroup"].get(key).is_some_and(|v| v.is_null()), "cgroup.{key}: {}", shown["cgroup"]);
    }
    assert!(shown["oom"].get("oom_cgroup_inferred").is_some_and(|v| v.is_null()));

    let last = cli_json(&["show", "last", "--json", "--db", db]);
    assert_eq!(last["victim"]["pid"], 11);

    let table = cli(&["list", "--db", db]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("ANON RSS") && text.contains("older") && text.contains("63.8 MiB"), "{text}");
}

#[test]
fn exit_codes_mean_one_thing_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    db_with(&db, &[kill(10, 1_000, Some("x"))]);
    let db = db.to_str().unwrap();

    let missing = cli(&["show", "999", "--db", db]);
    assert_eq!(missing.status.code(), Some(1), "no such record");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no kill with id 999"));

    let usage = cli(&["show", "not-an-id", "--db", db]);
    assert_eq!(usage.status.code(), Some(2), "usage error");

    let absent = dir.path().join("absent.db");
    let no_db = cli(&["list", "--db", absent.to_str().unwrap()]);
    assert_eq!(no_db.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&no_db.stderr);
    assert!(stderr.contains("absent.db") && stderr.lines().count() == 1, "{stderr}");
    assert!(!absent.exists(), "a reader must not create the database");

    // OOMRECORDER_DB stands in for --db.
    let via_env = Command::new(BIN).args(["list", "--json"]).env("OOMRECORDER_DB", db).output().unwrap();
    assert!(via_env.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&via_env.stdout).unwrap().as_array().unwrap().len(),
        1
    );
}

#[test]
fn a_closed_pipe_is_success() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    // Enough output to overflow a 64 KiB pipe, so the write really hits EPIPE.
    let kills: Vec<Kill> = (0..2_000).map(|i| kill(100 + i, 1_000 + i as u64, Some("many"))).collect();
    db_with(&db, &kills);
    let mut child = Command::new(BIN)
        .args(["list", "--json", "--limit", "2000", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "broken pipe must exit 0; stderr: {stderr}");
    assert!(stderr.is_empty(), "nothing to complain about: {stderr}");
}

#[test]
fn run_refuses_a_newer_schema_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("future.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 42;").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for args in [&["run"][..], &["list"][..]] {
        let out = Command::new(BIN).args(args).arg("--db").arg(&db).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // As root `run` gets past the capability check to the store; as
        // another user it stops earlier, also without touching the file.
        assert!(stderr.contains("schema version 42") || stderr.contains("CAP_BPF"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "the newer file was modified");
}

#[test]
fn run_cannot_write_there_and_says_where() {
    require_root("run_cannot_write_there_and_says_where");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let db = file.join("oom.db");
    let out = Command::new(BIN).args(["run", "--db"]).arg(&db).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a-file") && stderr.contains("cannot create"), "{stderr}");
}

#[test]
fn run_without_capabilities_names_them_and_touches_nothing() {
    require_root("run_without_capabilities_names_them_and_touches_nothing");
    let dir = tempfile::tempdir().unwrap();
    // nobody may write the directory, so only the capability check can stop it
    // before the store would be created; check that nothing was.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let db = dir.path().join("oom.db");
    // setpriv (util-linux): switching from uid 0 to 65534 clears every
    // effective capability, as for an unprivileged user.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN, "run", "--db"])
        .arg(&db)
        .output()
        .expect("run setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(2), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("CAP_BPF") && stderr.contains("CAP_PERFMON"), "{stderr}");
    assert!(!db.exists(), "the database was created despite the refusal");
}

#[test]
fn doctor_says_what_this_kernel_gives_and_exits_by_whether_the_recorder_can_run() {
    require_root("doctor_says_what_this_kernel_gives_and_exits_by_whether_the_recorder_can_run");
    let report = cli_json(&["doctor", "--json"]);
    assert_eq!(report["can_run"], true, "{report:#}");
    assert_eq!(report["btf"]["available"], true, "{report:#}");
    // CI's kernel (6.18) carries the task in mark_victim's raw tracepoint and
    // every field the recorder reads.
    assert_eq!(report["attach"]["point"], "raw_tracepoint mark_victim", "{report:#}");
    let fields = report["fields"].as_array().unwrap();
    assert!(fields.len() > 15, "{report:#}");
    for field in fields {
        assert_eq!(field["available"], true, "{field}");
    }
    assert!(report["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(report["cgroup_mounts"].as_array().is_some_and(|m| !m.is_empty()));
    let text = cli(&["doctor"]);
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("attach point: raw_tracepoint mark_victim") && text.contains("can run"), "{text}");

    // Without capabilities the recorder cannot run: exit 2, and it says why.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN, "doctor"])
        .output()
        .expect("run setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(2), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("missing CAP_BPF") && text.contains("cannot run"), "{text}");
}

#[test]
fn prune_deletes_beyond_the_cap_and_says_what_it_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let kills: Vec<Kill> = (1..=5).map(|i| kill(100 + i, i as u64 * 1_000, Some("hog"))).collect();
    db_with(&db, &kills);
    let db = db.to_str().unwrap();
    let out = cli(&["prune", "--max-age", "0", "--max-records", "2", "--db", db]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("deleted 0 kill(s) by age"), "{text}");
    assert!(text.contains("deleted 3 kill(s) beyond the newest 2"), "{text}");
    let left = cli_json(&["list", "--json", "--db", db]);
    let pids: Vec<i64> = left.as_array().unwrap().iter().map(|r| r["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids, [105, 104], "the newest stay");
    // A kill from 2001 goes by age; the two from an hour ago stay.
    let old = Kill { time_ns: Some(1_000_000_000_000_000_000), ..kill(99, 99, Some("old")) };
    Store::open(Path::new(db), Access::ReadWrite).unwrap().insert(&old).unwrap();
    let out = cli(&["prune", "--max-age", "1d", "--db", db]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("deleted 1 kill(s) older than 1 day(s)") && text.contains("2 kill(s) left"),
        "{text}"
    );
}

/// A run row as the daemon's writer leaves it at stop.
fn stopped_run(db: &Path, stored: &[Kill], lost_to_ringbuf: u64) {
    use oomrecorder::model::run::{Counter, Counts, Run};
    let mut store = Store::open(db, Access::ReadWrite).unwrap();
    for k in stored {
        store.insert(k).unwrap();
    }
    let times: Vec<i64> = stored.iter().filter_map(|k| k.time_ns).collect();
    let run = Run {
        pid: 1,
        boot_id: stored[0].boot_id.clone().unwrap(),
        started_ns: times.iter().min().unwrap() - 1,
        last_update_ns: times.iter().max().unwrap() + 1,
        stopped_ns: Some(times.iter().max().unwrap() + 1),
        attach_point: "raw_tracepoint".into(),
        version: "0.1.0".into(),
        counts: Counts::default()
            .with(Counter::VictimsSeen, stored.len() as u64 + lost_to_ringbuf)
            .with(Counter::EventsReceived, stored.len() as u64)
            .with(Counter::RecordsStored, stored.len() as u64)
            .with(Counter::RingbufFull, lost_to_ringbuf),
        vmstat_oom_kill_start: Some(40),
        vmstat_oom_kill_now: Some(40 + stored.len() as u64 + lost_to_ringbuf),
        ..Run::default()
    };
    let id = store.start_run(&run).unwrap();
    store.update_run(id, &run).unwrap();
}

#[test]
fn status_json_reports_the_runs_losses_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let kills = [kill(10, 1_000, Some("a")), kill(11, 2_000, Some("b")), kill(12, 3_000, Some("c"))];
    stopped_run(&db, &kills, 0);
    let out = cli(&["status", "--json", "--db", db.to_str().unwrap()]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "a stopped daemon needs attention: {status:#}");
    assert_eq!(status["running"], false);
    assert_eq!(status["pid"], serde_json::Value::Null);
    assert_eq!(status["attach_point"], "raw_tracepoint");
    assert_eq!(status["records_total"], 3);
    assert_eq!(status["records_this_run"], 3);
    assert!(status["database_bytes"].as_u64().is_some_and(|b| b > 0));
    for key in [
        "ringbuf_full",
        "decode",
        "kmsg_overrun",
        "without_kernel_report",
        "snapshots_missed",
        "write_failures",
    ] {
        assert_eq!(status["losses"][key], 0, "{key}: {status:#}");
    }
    assert_eq!(status["audit"]["kernel_oom_kills"], 3);
    assert_eq!(status["audit"]["recorded_kills"], 3);
    assert_eq!(status["audit"]["missing"], 0);
    assert_eq!(status["audit"]["matches"], true);

    // Two victims lost to a full ring buffer: counted, and missing in the audit.
    let lossy = dir.path().join("lossy.db");
    stopped_run(&lossy, &kills, 2);
    let out = cli(&["status", "--db", lossy.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("2 kills the kernel counted are missing"), "{text}");
    assert!(text.contains("lost: ring buffer full"), "{text}");

    let never = dir.path().join("never.db");
    db_with(&never, &[]);
    let out = cli(&["status", "--json", "--db", never.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((status["running"].clone(), status["audit"].clone()), (false.into(), serde_json::Value::Null));
}

#[test]
fn a_corrupt_database_is_named_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let kills: Vec<Kill> = (1..=50).map(|i| kill(i, i as u64 * 1_000, Some("hog"))).collect();
    db_with(&db, &kills);
    // Checkpointed into the main file (the store closed it), then every page
    // after the first (the header, so it is still recognisably SQLite) is
    // overwritten with garbage.
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 8192, "{} bytes", bytes.len());
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    let path = db.to_str().unwrap();
    for args in
        [vec!["status"], vec!["status", "--json"], vec!["list"], vec!["show", "1"], vec!["show", "last"]]
    {
        let mut all = args.clone();
        all.extend(["--db", path]);
        let out = cli(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("is corrupt") && err.contains("PRAGMA integrity_check"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "a query command changed the file");
}

#[test]
fn reads_do_not_fail_while_a_writer_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    db_with(&db, &[kill(10, 1_000, Some("a"))]);
    // The daemon's connection, mid-transaction: an uncommitted write.
    let mut writer = Store::open(&db, Access::ReadWrite).unwrap();
    writer
        .in_transaction(|store| {
            store.insert(&kill(11, 2_000, Some("b")))?;
            for args in [["list", "--json"], ["status", "--json"]] {
                let out = cli(&[args[0], args[1], "--db", db.to_str().unwrap()]);
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.code() != Some(2) && !err.contains("locked"), "{args:?}: {err}");
            }
            Ok(())
        })
        .unwrap();
}

/// A stdout whose reader is already gone: every write gets EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills both descriptors of the array it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the read end is ours and closed once; the write end is then
    // owned by the Stdio (closed when the child's copy is made and dropped).
    unsafe {
        libc::close(fds[0]);
        Stdio::from(<std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]))
    }
}

#[test]
fn every_command_that_prints_treats_a_closed_pipe_as_success() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    db_with(&db, &[kill(10, 1_000, Some("a")), kill(11, 2_000, Some("b"))]);
    let db = db.to_str().unwrap();
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["show", "last"],
        vec!["show", "last", "--json"],
        vec!["stats"],
        vec!["status", "--json"],
        vec!["prune", "--max-age", "0", "--max-records", "0"],
        vec!["doctor"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .args(["--db", db])
            .env_remove("OOMRECORDER_DB")
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        // doctor exits by whether the recorder can run here; status by the
        // daemon's health; neither may report the pipe as an error (2).
        assert_ne!(out.status.code(), Some(2), "{args:?}: {stderr}");
        if !matches!(args[0], "doctor" | "status") {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        }
    }
}

/// Peak RSS (kB) of one CLI run, as GNU time measures it.
fn peak_rss_kb(args: &[&str]) -> (u64, Vec<u8>) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", BIN])
        .args(args)
        .env_remove("OOMRECORDER_DB")
        .output()
        .expect("run /usr/bin/time (scripts/setup installs `time`)");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb = stderr.lines().last().and_then(|l| l.trim().parse().ok()).expect("time's %M");
    (kb, out.stdout)
}

/// `list --json` writes each row as it is read: five times the kills cost
/// no more memory (it held every record at once: 1.2 GB for 200,000).
#[test]
fn list_json_streams_its_rows_in_constant_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kmsg-oom-6.18-v1-memcg.txt");
    let out = Command::new(BIN).arg("import").arg(&fixture).arg("--db").arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Copies of the three real records, each with its whole kernel report.
    let grow = |copies: u32| {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('kills') WHERE name NOT IN ('id', 'fingerprint')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let list = columns.join(", ");
        conn.execute(
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO kills ({list}) SELECT {list} FROM (SELECT * FROM kills WHERE id <= 3), n"
            ),
            [copies],
        )
        .unwrap();
    };
    grow(1_000);
    let args = ["list", "--json", "--limit", "0", "--db", db.to_str().unwrap()];
    let (small, text) = peak_rss_kb(&args);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&text).unwrap().as_array().unwrap().len(), 3_003);
    grow(4_000);
    let (large, text) = peak_rss_kb(&args);
    let rows: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 15_003);
    let lines = peak_rss_kb(&["list", "--json-lines", "--limit", "0", "--db", db.to_str().unwrap()]).0;
    println!("peak RSS: {small} kB for 3,003 kills, {large} kB (--json), {lines} kB (--json-lines) for five times as many");
    assert!(large < small + 8 * 1024, "--json: {small} kB for 3,003 kills, {large} kB for 5x as many");
    assert!(lines < small + 8 * 1024, "--json-lines: {small} kB, then {lines} kB");
}

/// A Docker container's kill on cgroup v1, as the daemon records it: the
/// eBPF figures, the kernel's report (memory+swap without a limit), the
/// snapshot with its processes, and who the victim was.
fn container_kill(pid: i32, boot_ns: u64) -> Kill {
    use oomrecorder::model::{
        identity::Identity,
        snapshot::{Process, Snapshot},
        Oom,
    };
    let cid = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
    let cgroup = format!("/system.slice/docker-{cid}.scope");
    let mut kill = kill(pid, boot_ns, Some("python3"));
    kill.sources = vec![Source::Ebpf, Source::Kmsg, Source::Cgroup];
    kill.victim.cmdline = Some("python3 -c import os\nos.urandom(1<<30)".into());
    kill.victim.exe = Some("/usr/bin/python3.11".into());
    kill.cgroup = Some(cgroup.clone());
    kill.memory_limit_bytes = Some(64 << 20);
    kill.oom = Oom {
        reason: Some("Memory cgroup out of memory".into()),
        constraint: Some("CONSTRAINT_MEMCG".into()),
        oom_cgroup: Some(cgroup.clone()),
        task_cgroup: Some(cgroup.clone()),
        memory_usage_kb: Some(65_536),
        memory_limit_kb: Some(65_536),
        failcnt: Some(7),
        memsw_usage_kb: Some(65_536),
        memsw_limit_kb: Some(9_007_199_254_740_988),
        ..Oom::default()
    };
    kill.container = Some(Identity {
        runtime: Some("docker".into()),
        id: Some(cid.into()),
        container_name: Some("web-api".into()),
        image: Some("python:3.11-slim".into()),
        unit: Some(format!("docker-{cid}.scope")),
        slice: Some("system.slice".into()),
        ..Identity::default()
    });
    kill.snapshot = Some(Snapshot {
        path: Some(cgroup),
        memory_limit_bytes: Some(64 << 20),
        processes: vec![Process {
            pid: pid + 1,
            comm: Some("sh".into()),
            cmdline: Some("sh -c 'sleep 1\nexit'".into()),
            rss_kb: Some(900),
        }],
        ..Snapshot::default()
    });
    kill
}

/// `show` answers who and what on its first screen, as `coredumpctl info`
/// does: the diagnosis, the command line (on one line), the container and
/// its image, the limit that fired; v1's memory+swap by its name, and no
/// limit as `max`.
#[test]
fn show_of_a_container_kill_answers_who_and_what_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    db_with(&db, &[container_kill(4242, 5_000)]);
    let out = cli(&["show", "last", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    println!("{text}");
    let first: Vec<&str> = text.lines().take(25).collect();
    let has = |needle: &str| first.iter().any(|l| l.contains(needle));
    assert!(first[0].starts_with("Diagnosis: hit its 64.0 MiB limit in container web-api"), "{text}");
    assert!(has("Command line: python3 -c import os\\nos.urandom(1<<30)"), "escaped on one line: {text}");
    assert!(has("Executable: /usr/bin/python3.11"), "{text}");
    assert!(has("Container: web-api (docker 3f4e5a6b7c8d)") && has("Image: python:3.11-slim"), "{text}");
    assert!(has("Limit: 64.0 MiB, its own cgroup's") && has("Usage: 64.0 MiB at the kill"), "{text}");
    assert!(has("Memory+swap: 64.0 MiB of max"), "v1's memsw, no limit as max: {text}");
    assert!(has("RSS: anon 63.8 MiB, file 1.6 MiB, shmem 0 B"), "{text}");
    assert!(!text.contains("PiB") && !text.contains("EiB"), "a sentinel printed as a size: {text}");
    // The process table keeps one line per process.
    let row = text.lines().find(|l| l.contains("sh -c")).unwrap();
    assert!(row.contains("sh -c 'sleep 1\\nexit'"), "{row}");
    assert!(!text.lines().any(|l| l.trim() == "exit'"), "a newline broke the table: {text}");
}

/// `show` takes `list`'s filters and shows the newest kill they select; an
/// id with filters is a usage error; no match is "not found" (1).
#[test]
fn show_takes_lists_filters_and_shows_the_newest_match() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    db_with(
        &db,
        &[
            kill(10, 1_000, Some("batch")),
            kill(11, 2_000, Some("batch")),
            container_kill(12, 3_000),
            kill(13, 4_000, Some("other")),
        ],
    );
    let db = db.to_str().unwrap();
    let pid = |args: &[&str]| {
        let mut all = vec!["show", "--json", "--db", db];
        all.extend_from_slice(args);
        cli_json(&all)["victim"]["pid"].as_i64().unwrap()
    };
    assert_eq!(pid(&[]), 13, "no id: the newest");
    assert_eq!(pid(&["--comm", "batch"]), 11, "the newest of the comm");
    assert_eq!(pid(&["last", "--comm", "batch"]), 11);
    assert_eq!(pid(&["--container", "web-api"]), 12);
    assert_eq!(pid(&["--container", "3f4e5a"]), 12);
    assert_eq!(pid(&["--pid", "10"]), 10);
    let both = cli(&["show", "1", "--comm", "batch", "--db", db]);
    assert_eq!(both.status.code(), Some(2), "an id and filters");
    assert!(String::from_utf8_lossy(&both.stderr).contains("drop the filters"));
    let none = cli(&["show", "--comm", "nobody", "--db", db]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no kill matches these filters"));
}

/// `prune --dry-run` says what prune would delete, by the same rules, and
/// deletes nothing (it opens the database read-only).
#[test]
fn prune_dry_run_says_what_it_would_delete_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let mut kills: Vec<Kill> = (1..=5).map(|i| kill(100 + i, i as u64 * 1_000, Some("hog"))).collect();
    // A kill from 2001: old by any age limit.
    kills.push(Kill { time_ns: Some(1_000_000_000_000_000_000), ..kill(99, 99, Some("old")) });
    db_with(&db, &kills);
    let before = std::fs::read(&db).unwrap();
    let db = db.to_str().unwrap();
    let out = cli(&["prune", "--dry-run", "--max-age", "1d", "--max-records", "2", "--db", db]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("would delete 1 kill(s) older than 1 day(s)"), "{text}");
    assert!(text.contains("would delete 3 kill(s) beyond the newest 2"), "{text}");
    assert!(text.contains("2 kill(s) would be left") && text.contains("nothing was deleted"), "{text}");
    assert_eq!(std::fs::read(db).unwrap(), before, "the file was not touched");
    assert_eq!(cli_json(&["list", "--json", "--limit", "0", "--db", db]).as_array().unwrap().len(), 6);
    // The real prune deletes exactly that.
    let out = cli(&["prune", "--max-age", "1d", "--max-records", "2", "--db", db]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deleted 1 kill(s) older") && text.contains("deleted 3 kill(s) beyond"), "{text}");
}

/// `--limit 0` is no limit (as `max_records = 0` is no cap), never a false
/// "No OOM kills recorded".
#[test]
fn limit_0_lists_every_kill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    let kills: Vec<Kill> = (0..60).map(|i| kill(100 + i, 1_000 + i as u64, Some("many"))).collect();
    db_with(&db, &kills);
    let db = db.to_str().unwrap();
    assert_eq!(cli_json(&["list", "--json", "--limit", "0", "--db", db]).as_array().unwrap().len(), 60);
    assert_eq!(cli_json(&["list", "--json", "--db", db]).as_array().unwrap().len(), 50, "the default");
    let text = String::from_utf8(cli(&["list", "-n", "0", "--db", db]).stdout).unwrap();
    assert_eq!(text.lines().count(), 61, "a header and every kill: {text}");
    assert!(!text.contains("No OOM kills"));
}
