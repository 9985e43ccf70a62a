//! The victim's memory cgroup files, read the moment its event arrives:
//! container runtimes and systemd remove an emptied cgroup within
//! milliseconds, and with it the only copy of its limits and memory.stat.
//!
//! Everything here is best effort by design: a cgroup that vanishes mid-read,
//! an unreadable file or a malformed line leaves that field `None` and its
//! reason in `problems`; what was read is kept. The snapshot is taken *after*
//! the kill (the victim's pages may already be freed): the eBPF figures are
//! the kill-time truth.
//!
//! File formats: Documentation/admin-guide/cgroup-v2.rst (memory.current,
//! memory.max "max" or bytes, flat-keyed memory.stat / memory.events) and
//! Documentation/admin-guide/cgroup-v1/memory.rst (memory.usage_in_bytes,
//! limit_in_bytes, …, memory.stat with `total_*` keys).

use std::{fs, io, path::Path};

use crate::{
    kernel::memcg::{Hierarchy, MemcgVersion},
    model::{
        cmdline::CmdlinePolicy,
        figures::limit_bytes,
        snapshot::{Process, Snapshot},
    },
};

/// The task's cgroup path in `version`'s hierarchy, from `/proc/<pid>/cgroup`
/// (kernel/cgroup/cgroup.c `proc_cgroup_show`: `id:controllers:path`; v2's
/// line is `0::path`). Pure.
pub fn path_from_proc_cgroup(text: &str, version: MemcgVersion) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = match version {
            MemcgVersion::V1 => controllers.split(',').any(|c| c == "memory"),
            MemcgVersion::V2 => id == "0" && controllers.is_empty(),
        };
        wanted.then(|| path.to_owned())
    })
}

/// `max` (v2) and v1's near-2^63 mean "no limit": `None`.
pub fn parse_limit(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    let value: u64 = text.parse().map_err(|_| format!("not a number: {text:?}"))?;
    // v1 prints PAGE_COUNTER_MAX pages in bytes for none.
    Ok(limit_bytes(Some(value)))
}

/// Flat keyed files (`memory.stat`, `memory.events`): `key value` lines.
/// Malformed lines are reported, not fatal.
pub fn parse_keyed(text: &str) -> (Vec<(String, u64)>, Vec<String>) {
    let mut pairs = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once(' ').and_then(|(k, v)| v.trim().parse::<u64>().ok().map(|v| (k, v))) {
            Some((key, value)) => pairs.push((key.to_owned(), value)),
            None => bad.push(line.to_owned()),
        }
    }
    (pairs, bad)
}

fn read_text(dir: &Path, file: &str, problems: &mut Vec<String>) -> Option<String> {
    match fs::read_to_string(dir.join(file)) {
        Ok(text) => Some(text),
        // A file this kernel or configuration lacks (memory.peak before 5.19,
        // memsw without swap accounting) is not a problem.
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir.exists() => None,
        Err(e) => {
            problems.push(format!("{file}: {e}"));
            None
        }
    }
}

/// Reads the snapshot of the cgroup at `path` in `hierarchy`; processes'
/// details come from `proc_root` (normally /proc), command lines in full.
pub fn snapshot(hierarchy: &Hierarchy, path: &str, proc_root: &Path) -> Snapshot {
    snapshot_keeping(hierarchy, path, proc_root, CmdlinePolicy::Full)
}

/// As [`snapshot`], keeping of each process's command line what `cmdline` allows.
pub fn snapshot_keeping(
    hierarchy: &Hierarchy,
    path: &str,
    proc_root: &Path,
    cmdline: CmdlinePolicy,
) -> Snapshot {
    let dir = hierarchy.root.join(path.trim_start_matches('/'));
    let mut s =
        Snapshot { version: Some(hierarchy.version), path: Some(path.to_owned()), ..Snapshot::default() };
    let mut problems = Vec::new();
    let number = |file: &str, problems: &mut Vec<String>| -> Option<u64> {
        let text = read_text(&dir, file, problems)?;
        parse_limit(&text).map_err(|e| problems.push(format!("{file}: {e}"))).ok().flatten()
    };
    let keyed = |file: &str, problems: &mut Vec<String>| -> Option<Vec<(String, u64)>> {
        let text = read_text(&dir, file, problems)?;
        let (pairs, bad) = parse_keyed(&text);
        problems.extend(bad.into_iter().map(|l| format!("{file}: malformed line {l:?}")));
        Some(pairs)
    };
    match hierarchy.version {
        MemcgVersion::V2 => {
            s.memory_usage_bytes = number("memory.current", &mut problems);
            s.memory_limit_bytes = number("memory.max", &mut problems);
            s.memory_high_bytes = number("memory.high", &mut problems);
            s.memory_low_bytes = number("memory.low", &mut problems);
            s.memory_min_bytes = number("memory.min", &mut problems);
            s.memory_peak_bytes = number("memory.peak", &mut problems);
            s.swap_usage_bytes = number("memory.swap.current", &mut problems);
            s.swap_limit_bytes = number("memory.swap.max", &mut problems);
            s.events = keyed("memory.events", &mut problems);
            s.events_local = keyed("memory.events.local", &mut problems);
            s.memory_stat = keyed("memory.stat", &mut problems);
            s.pressure = read_text(&dir, "memory.pressure", &mut problems);
            s.oom_group = read_text(&dir, "memory.oom.group", &mut problems).map(|t| t.trim() == "1");
        }
        MemcgVersion::V1 => {
            s.memory_usage_bytes = number("memory.usage_in_bytes", &mut problems);
            s.memory_limit_bytes = number("memory.limit_in_bytes", &mut problems);
            s.memory_peak_bytes = number("memory.max_usage_in_bytes", &mut problems);
            s.memory_low_bytes = None;
            s.memory_high_bytes = number("memory.soft_limit_in_bytes", &mut problems);
            s.memsw_usage_bytes = number("memory.memsw.usage_in_bytes", &mut problems);
            s.memsw_limit_bytes = number("memory.memsw.limit_in_bytes", &mut problems);
            s.failcnt = number("memory.failcnt", &mut problems);
            s.memory_stat = keyed("memory.stat", &mut problems);
            s.events = keyed("memory.oom_control", &mut problems);
        }
    }
    // v2 `inactive_file`; v1 `total_inactive_file` (hierarchical, matching
    // the hierarchical usage_in_bytes).
    let inactive_key = match hierarchy.version {
        MemcgVersion::V2 => "inactive_file",
        MemcgVersion::V1 => "total_inactive_file",
    };
    let inactive =
        s.memory_stat.as_ref().and_then(|st| st.iter().find(|(k, _)| k == inactive_key).map(|(_, v)| *v));
    s.working_set_bytes = s.memory_usage_bytes.zip(inactive).map(|(u, i)| u.saturating_sub(i));
    if let Some(procs) = read_text(&dir, "cgroup.procs", &mut problems) {
        s.processes = procs
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(|pid| process_keeping(proc_root, pid, cmdline))
            .collect();
    }
    if !dir.exists() {
        problems.push(format!("{}: the cgroup was already removed", dir.display()));
    }
    s.problems = problems;
    s
}

/// One process's name, command line and RSS, best effort (it may be gone).
pub fn process(proc_root: &Path, pid: i32) -> Process {
    process_keeping(proc_root, pid, CmdlinePolicy::Full)
}

/// As [`process`], keeping of the command line what `cmdline` allows.
pub fn process_keeping(proc_root: &Path, pid: i32, cmdline: CmdlinePolicy) -> Process {
    let dir = proc_root.join(pid.to_string());
    let comm = fs::read_to_string(dir.join("comm")).ok().map(|c| c.trim_end().to_owned());
    let cmdline = fs::read(dir.join("cmdline")).ok().filter(|c| !c.is_empty()).and_then(|raw| {
        // NUL-separated argv (fs/proc/base.c `proc_pid_cmdline_read`).
        let text = String::from_utf8_lossy(raw.strip_suffix(&[0]).unwrap_or(&raw)).into_owned();
        cmdline.apply(&text.split('\0').collect::<Vec<_>>())
    });
    let rss_kb = fs::read_to_string(dir.join("status")).ok().and_then(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    });
    Process { pid, comm, cmdline, rss_kb }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).unwrap();
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
    }

    #[test]
    fn proc_cgroup_lines_for_each_version() {
        let hybrid = "12:memory:/process_api/abc\n1:cpu:/\n0::/init.scope\n";
        assert_eq!(path_from_proc_cgroup(hybrid, MemcgVersion::V1).as_deref(), Some("/process_api/abc"));
        assert_eq!(path_from_proc_cgroup(hybrid, MemcgVersion::V2).as_deref(), Some("/init.scope"));
        assert_eq!(path_from_proc_cgroup("0::/a/b\n", MemcgVersion::V1), None);
        assert_eq!(path_from_proc_cgroup("5:cpuset,memory:/x\n", MemcgVersion::V1).as_deref(), Some("/x"));
    }

    #[test]
    fn limits_and_keyed_files() {
        assert_eq!(parse_limit("max\n"), Ok(None));
        assert_eq!(parse_limit("67108864\n"), Ok(Some(67_108_864)));
        assert_eq!(parse_limit("9223372036854771712"), Ok(None), "v1's no-limit");
        assert!(parse_limit("lots").is_err());
        let (pairs, bad) = parse_keyed("anon 4096\nfile 0\nbroken\n\n");
        assert_eq!(pairs, [("anon".to_owned(), 4096), ("file".to_owned(), 0)]);
        assert_eq!(bad, ["broken"]);
    }

    #[test]
    fn a_v2_snapshot_with_working_set_and_processes() {
        let root = tempfile::tempdir().unwrap();
        let cg = root.path().join("kubepods/burstable/podx/c1");
        write(
            &cg,
            &[
                ("memory.current", "67100000\n"),
                ("memory.max", "67108864\n"),
                ("memory.high", "max\n"),
                ("memory.low", "0\n"),
                ("memory.min", "0\n"),
                ("memory.swap.current", "0\n"),
                ("memory.swap.max", "0\n"),
                ("memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n"),
                ("memory.stat", "anon 66000000\nfile 1000000\ninactive_file 600000\nbad line here\n"),
                ("memory.oom.group", "1\n"),
                ("cgroup.procs", "4242\n"),
            ],
        );
        let proc_root = root.path().join("proc");
        write(
            &proc_root.join("4242"),
            &[
                ("comm", "java\n"),
                ("cmdline", "java\0-Xmx1g\0-jar\0app.jar\0"),
                ("status", "Name:\tjava\nVmRSS:\t  1024 kB\n"),
            ],
        );
        let h = Hierarchy { version: MemcgVersion::V2, root: root.path().to_path_buf() };
        let s = snapshot(&h, "/kubepods/burstable/podx/c1", &proc_root);
        assert_eq!(s.memory_limit_bytes, Some(67_108_864));
        assert_eq!(s.memory_high_bytes, None, "max is no limit");
        assert_eq!(s.memory_peak_bytes, None, "an absent file (kernel < 5.19) is unknown, not a problem");
        assert_eq!(s.working_set_bytes, Some(67_100_000 - 600_000));
        assert_eq!(s.oom_group, Some(true));
        assert_eq!(
            s.events.as_ref().unwrap().iter().find(|(k, _)| k == "oom_kill").map(|(_, v)| *v),
            Some(1)
        );
        assert_eq!(s.memory_stat.as_ref().unwrap().len(), 3);
        assert_eq!(s.problems, ["memory.stat: malformed line \"bad line here\""]);
        assert_eq!(
            s.processes,
            [Process {
                pid: 4242,
                comm: Some("java".into()),
                cmdline: Some("java -Xmx1g -jar app.jar".into()),
                rss_kb: Some(1024)
            }]
        );
    }

    #[test]
    fn a_v1_snapshot() {
        let root = tempfile::tempdir().unwrap();
        let cg = root.path().join("docker/abc");
        write(
            &cg,
            &[
                ("memory.usage_in_bytes", "1000\n"),
                ("memory.limit_in_bytes", "67108864\n"),
                ("memory.max_usage_in_bytes", "67108864\n"),
                ("memory.soft_limit_in_bytes", "9223372036854771712\n"),
                ("memory.failcnt", "37\n"),
                ("memory.stat", "cache 0\nrss 1000\ntotal_inactive_file 400\n"),
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
                ("cgroup.procs", ""),
            ],
        );
        let h = Hierarchy { version: MemcgVersion::V1, root: root.path().to_path_buf() };
        let s = snapshot(&h, "/docker/abc", Path::new("/nonexistent"));
        assert_eq!(
            (s.memory_limit_bytes, s.memory_high_bytes, s.failcnt),
            (Some(67_108_864), None, Some(37))
        );
        assert_eq!(s.working_set_bytes, Some(600));
        assert!(s.problems.is_empty(), "{:?}", s.problems);
    }

    #[test]
    fn a_vanished_cgroup_keeps_the_record_and_says_why() {
        let root = tempfile::tempdir().unwrap();
        let h = Hierarchy { version: MemcgVersion::V2, root: root.path().to_path_buf() };
        let s = snapshot(&h, "/gone", &root.path().join("proc"));
        assert_eq!(s.memory_limit_bytes, None);
        assert!(s.problems.iter().any(|p| p.contains("already removed")), "{:?}", s.problems);
    }
}
