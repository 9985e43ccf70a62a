//! Hostile `import` input: a device or an input that never ends is refused
//! within its memory bound, a line longer than the kernel's is passed
//! over, impossible figures are stored as unknown with a note, and kmsg
//! records that programs wrote are not kills.

use std::{process::Stdio, time::Instant};

use super::*;

/// `oomrecorder import ARGS` in a memory cgroup of its own (256 MiB) under
/// `ulimit -v`, its stdin from `stdin` (a shell redirection); returns the
/// exit code, stderr, stdout, peak RSS in KiB (GNU time) and seconds taken.
fn import_bounded(db: &Path, args: &str, stdin: &str) -> (Option<i32>, String, String, u64, f64) {
    let cgroup = MemCgroup::create(&unique_name("imp-"), 256 << 20);
    let work = tempfile::tempdir().unwrap();
    let rss = work.path().join("rss");
    let script = format!(
        "echo $$ > {procs} && ulimit -v 1048576 && exec /usr/bin/time -o {rss} -f %M {BIN} import {args} --db {db} {stdin}",
        procs = cgroup.path.join("cgroup.procs").display(),
        rss = rss.display(),
        db = db.display(),
    );
    let started = Instant::now();
    let out = Command::new("/bin/sh").args(["-c", &script]).stdin(Stdio::null()).output().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&rss).unwrap_or_default();
    let peak = text.lines().rev().find_map(|l| l.trim().parse().ok()).unwrap_or(u64::MAX);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        peak,
        secs,
    )
}

fn killed_line(pid: u32, comm: &str, anon: &str, adj: &str) -> String {
    format!(
        "Memory cgroup out of memory: Killed process {pid} ({comm}) total-vm:207776kB, anon-rss:{anon}kB, \
         file-rss:1676kB, shmem-rss:0kB, UID:0 pgtables:172kB oom_score_adj:{adj}"
    )
}

#[test]
fn hostile_input_is_refused_or_passed_over_within_bounds() {
    let _serial = serial("hostile_input_is_refused_or_passed_over_within_bounds");
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("oomrecorder.db");
    let db_arg = db.to_str().unwrap();

    // Devices and kernel interfaces never end: refused before any read.
    for (device, says) in
        [("/dev/zero", "is a device"), ("/dev/kmsg", "is a device"), ("/proc/kmsg", "kernel interface")]
    {
        let (code, err, _, peak, secs) = import_bounded(&db, device, "");
        assert_eq!(code, Some(2), "import {device}: {err}");
        assert!(err.contains(says) && err.contains("dmesg >"), "import {device}: {err}");
        assert!(peak < 32 << 10 && secs < 5.0, "import {device}: {peak} KiB, {secs:.1} s");
        println!("import {device}: exit 2 in {secs:.2} s, peak RSS {peak} KiB: {}", err.trim());
    }
    // The same stream through a pipe: refused after 64 MiB without a line break.
    let (code, err, _, peak, secs) = import_bounded(&db, "-", "< /dev/zero");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("without a line break"), "{err}");
    assert!(peak < 32 << 10, "peak RSS {peak} KiB reading /dev/zero through stdin");
    println!("import - < /dev/zero: exit 2 in {secs:.2} s, peak RSS {peak} KiB: {}", err.trim());

    // One 50 MB line (the issue's) among real lines: passed over.
    let big = work.path().join("big.log");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        write!(file, "[  1.000000] Out of memory: Killed process 1 (").unwrap();
        for _ in 0..50 {
            file.write_all(&[b'a'; 1 << 20]).unwrap();
        }
        writeln!(file, ") total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0").unwrap();
        writeln!(file, "[  2.000000] {}", killed_line(7001, "real-one", "65280", "0")).unwrap();
    }
    let (code, err, out, peak, _) = import_bounded(&db, big.to_str().unwrap(), "");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 kills found, 1 added") && out.contains("passed over: 1 line(s) longer"), "{out}");
    assert!(peak < 32 << 10, "peak RSS {peak} KiB for a 50 MB line");
    let db_bytes = std::fs::metadata(&db).unwrap().len();
    assert!(db_bytes < 1 << 20, "the database is {db_bytes} bytes");
    println!(
        "import of a 50 MB line: passed over, peak RSS {peak} KiB, database {db_bytes} bytes; {}",
        out.trim()
    );

    // Figures no kernel prints, and a comm longer than a task's.
    let odd = work.path().join("odd.log");
    std::fs::write(
        &odd,
        format!("[  3.000000] {}\n", killed_line(7002, &"c".repeat(52), "9223372036854775807", "-99999")),
    )
    .unwrap();
    let (code, err, out, _, _) = import_bounded(&db, odd.to_str().unwrap(), "");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("not stored: 3 figure(s)"), "{out}");
    let row = rows(&db).into_iter().find(|r| r["pid"] == 7002).expect("the odd kill is recorded");
    let shown = cli_json(&["show", &row["id"].to_string(), "--json", "--db", db_arg]);
    assert_eq!(shown["victim"]["anon_rss_kb"], Value::Null, "{shown:#}");
    assert_eq!(shown["victim"]["oom_score_adj"], Value::Null, "{shown:#}");
    assert_eq!(shown["victim"]["comm"], "c".repeat(15));
    assert_eq!(shown["victim"]["total_vm_kb"], 207_776);
    let notes = shown["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 3, "{notes:#?}");
    println!("impossible figures: null, with notes {notes:?}");

    // A kmsg dump where a program wrote a fake kill naming the daemon's pid
    // into /dev/kmsg (facility user): not a kill.
    let dump = work.path().join("kmsg.dump");
    std::fs::write(
        &dump,
        format!(
            "14,90001,4000000,-;{}\n6,90002,4000001,-;{}\n",
            killed_line(std::process::id(), "oomrecorder", "1", "0"),
            killed_line(7003, "kernel-one", "2", "0")
        ),
    )
    .unwrap();
    let (code, err, out, _, _) = import_bounded(&db, dump.to_str().unwrap(), "");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 kills found") && out.contains("passed over: 1 /dev/kmsg record(s)"), "{out}");
    let all = rows(&db);
    assert!(all.iter().all(|r| r["pid"] != i64::from(std::process::id())), "{all:#?}");
    assert!(all.iter().any(|r| r["pid"] == 7003));
    assert_eq!(all.len(), 3, "real-one, the odd one, kernel-one: {all:#?}");
}
