//! `oomrecorder import` on real captured kernel logs (and the older shapes
//! written from the kernel's format strings), in every format users paste:
//! each kill the kernel reported becomes one record with its figures, and a
//! second import adds nothing. The oracle is the test's own reading of the
//! `Killed process` lines (support::parse_killed_line), not the parser's.
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

use std::{collections::BTreeMap, path::Path, process::Command};

use support::*;

fn fixture(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `[ 123.456789] text` → (µs, text).
fn split_dmesg(line: &str) -> (u64, &str) {
    let (stamp, text) = line.split_once("] ").expect("dmesg line");
    let (secs, micros) = stamp.trim_start_matches('[').trim().split_once('.').expect("stamp");
    (secs.parse::<u64>().unwrap() * 1_000_000 + micros.parse::<u64>().unwrap(), text)
}

/// The same log in the forms users paste it in.
fn formats(lines: &[String]) -> Vec<(&'static str, String)> {
    let boot = 1_764_000_000u64; // wall clock of boot, s
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let civil = |usec: u64| {
        let t = jiff::Timestamp::from_second((boot + usec / 1_000_000) as i64).unwrap();
        t.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime()
    };
    let mut out: Vec<(&'static str, String)> = vec![
        ("dmesg", String::new()),
        ("dmesg -T", String::new()),
        ("dmesg -T (ja locale)", String::new()),
        ("journalctl -k", String::new()),
        ("syslog (ru locale)", String::new()),
        ("journalctl -o short-iso", String::new()),
        ("/dev/kmsg", String::new()),
        ("grep -n", String::new()),
    ];
    for (seq, line) in lines.iter().enumerate() {
        let (usec, text) = split_dmesg(line);
        let c = civil(usec);
        let (hms, day) = (format!("{:02}:{:02}:{:02}", c.hour(), c.minute(), c.second()), c.day());
        let mon = month[c.month() as usize - 1];
        let rendered = [
            line.clone(),
            format!("[{}] {text}", c.strftime("%a %b %e %H:%M:%S %Y")),
            format!("[火 {:2}月 {day:2} {hms} {}] {text}", c.month(), c.year()),
            format!("{mon} {day:02} {hms} web-1 kernel: {text}"),
            format!("июл {day:02} {hms} узел kernel: {text}"),
            format!("{}-{:02}-{day:02}T{hms}+0000 web-1 kernel: {text}", c.year(), c.month()),
            format!("3,{seq},{usec},-;{}", text.replace('\\', "\\x5c")),
            format!("{}:{line}", seq + 1),
        ];
        for ((_, buf), r) in out.iter_mut().zip(rendered) {
            buf.push_str(&r);
            buf.push('\n');
        }
    }
    out
}

/// The kernel's victims in a log: first `Killed process` line per pid.
fn victims(lines: &[String]) -> BTreeMap<i64, KilledLine> {
    let mut kills = BTreeMap::new();
    for line in lines {
        if let Some(k) = parse_killed_line(line) {
            kills.entry(k.pid).or_insert(k);
        }
    }
    kills
}

fn import(db: &Path, input: &str) -> String {
    let mut child = Command::new(BIN)
        .args(["import", "-", "--db"])
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn check_fixture(name: &str, expected_kills: usize) {
    let lines = fixture(name);
    let kernel = victims(&lines);
    assert_eq!(kernel.len(), expected_kills, "{name}: the fixture itself");
    for (format, text) in formats(&lines) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("oom.db");
        let said = import(&db, &text);
        assert!(
            said.contains(&format!("{expected_kills} kills found, {expected_kills} added")),
            "{name} as {format}: {said}"
        );
        let again = import(&db, &text);
        assert!(again.contains(", 0 added"), "{name} as {format}, imported twice: {again}");

        let rows = cli_json(&["list", "--json", "--limit", "100000", "--db", db.to_str().unwrap()]);
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), expected_kills, "{name} as {format}");
        for row in rows {
            let pid = row["pid"].as_i64().unwrap();
            let k = kernel.get(&pid).unwrap_or_else(|| panic!("{name} as {format}: pid {pid} is no victim"));
            let shown = cli_json(&["show", &row["id"].to_string(), "--json", "--db", db.to_str().unwrap()]);
            let v = &shown["victim"];
            assert_eq!(shown["sources"], serde_json::json!(["import"]));
            assert_eq!(v["comm"].as_str(), Some(k.comm.as_str()), "{name} as {format}");
            assert_eq!(v["anon_rss_kb"].as_u64(), Some(k.anon_rss_kb), "{name} as {format}, pid {pid}");
            assert_eq!(v["total_vm_kb"].as_u64(), Some(k.total_vm_kb), "{name} as {format}, pid {pid}");
            assert_eq!(v["file_rss_kb"].as_u64(), Some(k.file_rss_kb), "{name} as {format}, pid {pid}");
            assert_eq!(v["shmem_rss_kb"].as_u64(), Some(k.shmem_rss_kb), "{name} as {format}, pid {pid}");
            if format == "journalctl -o short-iso" || format.starts_with("dmesg -T") && !format.contains("ja")
            {
                assert!(
                    shown["time"].as_str().is_some(),
                    "{name} as {format}: a stamp with a year gives a time"
                );
            }
        }
    }
}

#[test]
fn linux_6_18_cgroup_v1_memcg_kills() {
    check_fixture("kmsg-oom-6.18-v1-memcg.txt", 3);
}

#[test]
fn linux_6_1_cgroup_v2_single_and_group_kills() {
    check_fixture("kmsg-oom-6.1-v2-group.txt", 53);
}

#[test]
fn linux_6_12_cgroup_v2_single_and_group_kills() {
    check_fixture("kmsg-oom-6.12-v2-group.txt", 53);
}

/// Real journal files, written by systemd-journal-remote from Journal Export
/// Format: kernel entries as journald stores them (`_TRANSPORT=kernel`,
/// `_BOOT_ID`, `_SOURCE_MONOTONIC_TIMESTAMP`).
#[test]
fn journal_files_are_read_with_their_boot_and_time() {
    let remote = Path::new("/lib/systemd/systemd-journal-remote");
    assert!(remote.exists(), "systemd-journal-remote is missing: scripts/setup installs it");
    let lines = fixture("kmsg-oom-6.18-v1-memcg.txt");
    let kernel = victims(&lines);
    let boot = "90e19252c4f34f33b61e680af3ffcadb";
    let boot_wall_usec = 1_764_000_000_000_000u64;
    let mut export = Vec::new();
    for line in &lines {
        let (usec, text) = split_dmesg(line);
        for field in [
            format!("__REALTIME_TIMESTAMP={}", boot_wall_usec + usec),
            format!("__MONOTONIC_TIMESTAMP={usec}"),
            format!("_BOOT_ID={boot}"),
            "_TRANSPORT=kernel".to_owned(),
            format!("_SOURCE_MONOTONIC_TIMESTAMP={usec}"),
            "PRIORITY=3".to_owned(),
            format!("MESSAGE={text}"),
        ] {
            export.extend_from_slice(field.as_bytes());
            export.push(b'\n');
        }
        export.push(b'\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).unwrap();
    let mut child = Command::new(remote)
        .arg("-o")
        .arg(journal_dir.join("kernel.journal"))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &export).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("{} entries", lines.len())), "journal-remote dropped entries: {said}");

    let db = dir.path().join("oom.db");
    let run = |db: &Path| {
        let out = Command::new(BIN)
            .args(["import", "--journal-dir"])
            .arg(&journal_dir)
            .arg("--db")
            .arg(db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let said = run(&db);
    assert!(said.contains("3 kills found, 3 added"), "{said}");
    assert!(run(&db).contains(", 0 added"), "a second import adds nothing");
    let rows = cli_json(&["list", "--json", "--db", db.to_str().unwrap()]);
    for row in rows.as_array().unwrap() {
        let shown = cli_json(&["show", &row["id"].to_string(), "--json", "--db", db.to_str().unwrap()]);
        let pid = shown["victim"]["pid"].as_i64().unwrap();
        let k = &kernel[&pid];
        assert_eq!(shown["victim"]["anon_rss_kb"].as_u64(), Some(k.anon_rss_kb));
        assert_eq!(shown["boot_id"], "90e19252-c4f3-4f33-b61e-680af3ffcadb");
        assert!(shown["time"].as_str().is_some_and(|t| t.starts_with("2025-11-24")), "{}", shown["time"]);
        assert!(shown["kmsg_usec"].as_u64().is_some());
    }
}

/// The older kernels' shapes (written from the kernels' format strings, see
/// tests/fixtures/README.md): every era's kill lines become records through
/// the whole import path, as raw dmesg.
#[test]
fn older_kernel_shapes_import_their_kills() {
    for (name, kills) in [
        ("kmsg-oom-2.6.32-rhel6-shape.txt", 1),
        ("kmsg-oom-3.10-rhel7-shape.txt", 1),
        ("kmsg-oom-4.14-shape.txt", 3),
        ("kmsg-oom-4.19-shape.txt", 4),
        ("kmsg-oom-6.19-shape.txt", 3),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("oom.db");
        let said = import(&db, &fixture(name).join("\n"));
        assert!(said.contains(&format!("{kills} kills found, {kills} added")), "{name}: {said}");
        let rows = cli_json(&["list", "--json", "--db", db.to_str().unwrap()]);
        for row in rows.as_array().unwrap() {
            assert!(row["anon_rss_kb"].as_u64().is_some(), "{name}: {row}");
            assert!(row["comm"].as_str().is_some_and(|c| !c.is_empty()), "{name}: {row}");
        }
    }
}

/// `show` for people: the diagnosis first, the report's statements, and the
/// report whole with `--raw`; `show --json` carries the diagnosis too.
#[test]
fn show_leads_with_a_diagnosis() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    import(&db, &fixture("kmsg-oom-6.12-v2-group.txt").join("\n"));
    let db = db.to_str().unwrap();
    let text = String::from_utf8(cli(&["show", "1", "--db", db]).stdout).unwrap();
    assert!(text.starts_with("Diagnosis: hit its 32.0 MiB limit in cgroup /single"), "{text}");
    assert!(text.contains("oom-kill:constraint=CONSTRAINT_MEMCG") && !text.contains("Call Trace"), "{text}");
    let raw = String::from_utf8(cli(&["show", "1", "--raw", "--db", db]).stdout).unwrap();
    assert!(raw.contains("Call Trace") && !raw.contains("--raw shows"), "{raw}");
    let shown = cli_json(&["show", "1", "--json", "--db", db]);
    assert_eq!(shown["diagnosis"]["rule"], "memcg_limit");
    let group = cli_json(&["show", "30", "--json", "--db", db]);
    assert_eq!(group["diagnosis"]["rule"], "group_kill", "{}", group["diagnosis"]);
    let missing = cli(&["show", "999", "--db", db]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("the newest is 53"));
}

/// The JSON contract on real records: every captured and era-shaped kernel
/// log, imported, and every key of each record's `show --json` walked: no
/// kernel sentinel anywhere, and numbers as numbers in every section (the
/// report's memory.stat and task table included). The real kills of the
/// real-kernel tests are walked the same way there.
#[test]
fn show_json_of_every_fixtures_records_keeps_the_contract() {
    let fixtures =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")).unwrap();
    let mut names: Vec<String> = fixtures
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kmsg-oom-"))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    let mut walked = 0;
    let mut memsw = false;
    for name in &names {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("oom.db");
        import(&db, &fixture(name).join("\n"));
        let db = db.to_str().unwrap();
        let rows = cli_json(&["list", "--json", "--limit", "0", "--db", db]);
        for row in rows.as_array().unwrap() {
            let problems = json_contract_problems(row);
            assert!(problems.is_empty(), "{name}: list row: {problems:#?}");
            let shown = cli_json(&["show", &row["id"].to_string(), "--json", "--db", db]);
            let problems = json_contract_problems(&shown);
            assert!(problems.is_empty(), "{name}: record {}: {problems:#?}", row["id"]);
            // The report's own figures stay: numbers now, same keys.
            if let Some(tasks) = shown["oom"]["tasks"].as_array() {
                assert!(tasks.iter().all(|t| t["pid"].is_i64()), "{name}: {tasks:?}");
            }
            memsw |= shown["oom"]["memsw_usage_kb"].is_u64() && shown["oom"]["memsw_limit_kb"].is_null();
            walked += 1;
        }
    }
    assert!(walked > 100, "{walked} records");
    assert!(memsw, "the v1 fixture's unlimited memory+swap is null, its usage kept");
}

/// A memory.oom.group kill is one incident with all its victims (the
/// chosen one, printed twice by the kernel, once): `list --incidents`
/// shows it on one line, `--limit` counts incidents, and `show` of any
/// victim names the incident and its other victims.
#[test]
fn a_group_kill_is_one_incident_with_every_victim() {
    for name in ["kmsg-oom-6.1-v2-group.txt", "kmsg-oom-6.12-v2-group.txt"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("oom.db");
        import(&db, &fixture(name).join("\n"));
        let db = db.to_str().unwrap();
        let incidents = cli_json(&["list", "--incidents", "--json", "--limit", "0", "--db", db]);
        let incidents = incidents.as_array().unwrap();
        let victims: Vec<u64> = incidents.iter().map(|i| i["victims"].as_u64().unwrap()).collect();
        assert_eq!(victims, [50, 1, 1, 1], "{name}: three single kills and one group kill of 50");
        let group = &incidents[0];
        assert_eq!(group["group_cgroup"], "/group", "{name}");
        assert_eq!(group["victim_ids"].as_array().unwrap().len(), 50, "{name}");
        assert_eq!(group["comm"], "oomt-grphog", "{name}: named by the chosen victim");
        for key in LIST_ROW_KEYS {
            assert!(group.get(key).is_some(), "{name}: an incident row is a list row too: {key}");
        }
        assert_eq!(
            cli_json(&["list", "--incidents", "--json", "-n", "2", "--db", db]).as_array().unwrap().len(),
            2
        );
        let table = String::from_utf8(cli(&["list", "--incidents", "--db", db]).stdout).unwrap();
        assert_eq!(table.lines().count(), 5, "{table}");
        assert!(table.lines().next().unwrap().contains("VICTIMS"), "{table}");

        // Any victim names its incident and the others.
        let member = group["victim_ids"][30].to_string();
        let shown = cli_json(&["show", &member, "--json", "--db", db]);
        let incident = &shown["incident"];
        assert_eq!(
            (&incident["id"], &incident["victims"]),
            (&group["incident_id"], &serde_json::json!(50)),
            "{name}"
        );
        assert_eq!(incident["members"].as_array().unwrap().len(), 50);
        assert_eq!(shown["diagnosis"]["text"], "killed as part of memory.oom.group /group with 49 others");
        let text = String::from_utf8(cli(&["show", &member, "--db", db]).stdout).unwrap();
        let head: Vec<&str> = text.lines().take(25).collect();
        let incident_line =
            format!("Incident: {}, the memory.oom.group kill of /group: 50 victim(s)", group["incident_id"]);
        assert!(head.iter().any(|l| l.contains(&incident_line)), "{name}: {text}");
        assert!(
            head.iter().any(|l| l.contains("Other victims: ") && l.contains("and 44 more")),
            "{name}: {text}"
        );
        // A member keeps its own kill line; the OOM's report is kept once.
        let pointer = format!("kept once, with its first victim: oomrecorder show {}", group["incident_id"]);
        assert!(text.contains(&pointer), "{name}: {text}");
        // A single kill is an incident of one.
        let single = cli_json(&["show", &incidents[1]["id"].to_string(), "--json", "--db", db]);
        assert_eq!(single["incident"]["victims"], 1);
        assert!(single["incident"]["group_cgroup"].is_null());
    }
}

/// A raw `dmesg` of the running boot, imported into a store the daemon
/// keeps: a kill the daemon recorded (same boot, pid and log stamp) is
/// merged into its record, not added again, and the log's other kills get
/// the running boot's id and their real times. (The real-kernel test does
/// the same with this machine's own `dmesg`.)
#[test]
fn a_dmesg_of_the_running_boot_joins_the_daemons_records() {
    use oomrecorder::{
        model::{Kill, Source, Victim},
        store::{Access, Store},
    };
    let boot = oomrecorder::clock::read_boot_id(Path::new("/proc")).unwrap();
    let line = |usec: u64, pid: u32| {
        format!(
            "[{:5}.{:06}] Memory cgroup out of memory: Killed process {pid} (dd) total-vm:207776kB, anon-rss:65280kB, file-rss:1676kB, shmem-rss:0kB, UID:0 pgtables:172kB oom_score_adj:0",
            usec / 1_000_000,
            usec % 1_000_000
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oom.db");
    // The daemon's record of the first kill, one second after boot.
    let recorded = Kill {
        boot_id: Some(boot.clone()),
        kmsg_usec: Some(1_000_000),
        time_ns: Some(now_ns() - 1),
        recorded_ns: now_ns(),
        sources: vec![Source::Kmsg],
        victim: Victim { pid: 7558, comm: Some("dd".into()), ..Victim::default() },
        kernel_report: vec![line(1_000_000, 7558)[15..].to_owned()],
        ..Kill::default()
    };
    Store::open(&db, Access::ReadWrite).unwrap().insert(&recorded).unwrap();
    let dmesg = [line(1_000_000, 7558), line(2_000_000, 7559)].join("\n");
    let said = import(&db, &dmesg);
    assert!(said.contains("2 kills found, 1 added, 1 already recorded"), "{said}");
    assert!(said.contains("2 logged by the running boot"), "{said}");
    assert!(import(&db, &dmesg).contains(", 0 added"), "a second import adds nothing");
    let db = db.to_str().unwrap();
    let rows = cli_json(&["list", "--json", "--db", db]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let merged = rows.iter().find(|r| r["pid"] == 7558).unwrap();
    assert_eq!(merged["sources"], serde_json::json!(["kmsg", "import"]));
    let added = cli_json(&["show", "--pid", "7559", "--json", "--db", db]);
    assert_eq!(added["boot_id"], boot.as_str());
    let time = added["time"].as_str().expect("a real time").parse::<jiff::Timestamp>().unwrap();
    assert!(time < jiff::Timestamp::now(), "{time}");
}
