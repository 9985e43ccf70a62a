//! Kernel matrix: boots Debian's cloud kernels under qemu (TCG) with an
//! initramfs holding busybox, the freshly built recorder and its libraries,
//! makes real OOM kills on cgroup v2 inside (tests/kernels/guest-init.sh),
//! and checks every victim the guest kernel reported against what the
//! recorder stored.
//!
//! Why an initramfs and not a 9p/virtiofs share of the host's root: Debian's
//! cloud kernels have no 9p and virtio-fs only as a module, and an initramfs
//! keeps the guest hermetic (nothing of the host's root but the files copied
//! in) and boots in seconds.
//!
//! Run by `tests/kernels/run [VERSION...]` (default 6.1 6.12); a plain
//! `cargo test` does not run it (it is `test = false`). Exits non-zero on any
//! miss; a missing download or a qemu failure is a failure, never a skip.
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../support/mod.rs"]
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const DEFAULT_KERNELS: [&str; 2] = ["6.1", "6.12"];
/// Victims per kernel: 3 single kills + one memory.oom.group of 50 tasks.
const SINGLE_KILLS: usize = 3;
const GROUP_KILLS: usize = 50;
/// TCG is slow; a guest that has not powered off by then is stuck.
const GUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Fields compared with the kernel's `Killed process` line.
const FIELDS: [&str; 4] = ["total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb"];

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let mut versions: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if versions.is_empty() {
        versions = DEFAULT_KERNELS.iter().map(|v| v.to_string()).collect();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cache = root.join("target/kernels");
    let started = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    let initramfs = match fs::create_dir_all(&cache)
        .map_err(|e| format!("mkdir {}: {e}", cache.display()))
        .and_then(|()| build_initramfs(&root, &cache))
    {
        Ok(path) => path,
        Err(e) => {
            println!("initramfs: FAILED: {e}");
            println!("0 passed, {} failed", versions.len());
            return ExitCode::FAILURE;
        }
    };
    for version in &versions {
        let kernel_started = Instant::now();
        match run_kernel(version, &cache, &initramfs) {
            Ok(line) => {
                passed += 1;
                println!("{line} ({} s)", kernel_started.elapsed().as_secs());
            }
            Err(e) => {
                failed += 1;
                println!("{version}: FAILED: {e} ({} s)", kernel_started.elapsed().as_secs());
            }
        }
    }
    println!("{passed} passed, {failed} failed ({} s)", started.elapsed().as_secs());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds `initramfs.cpio`: busybox, /init, the recorder (stripped), dd and
/// sleep copied under the victims' names, and every library `ldd` names.
fn build_initramfs(root: &Path, cache: &Path) -> Result<PathBuf> {
    let staging = cache.join("initramfs");
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| format!("clean {}: {e}", staging.display()))?;
    }
    for dir in ["bin", "proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(staging.join(dir)).map_err(|e| format!("mkdir {dir}: {e}"))?;
    }
    let copy = |from: &Path, to: &str| -> Result<()> {
        let dest = staging.join(to.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
        }
        fs::copy(from, &dest)
            .map(drop)
            .map_err(|e| format!("copy {} to {}: {e}", from.display(), dest.display()))
    };
    copy(Path::new("/bin/busybox"), "bin/busybox")?;
    copy(&root.join("tests/kernels/guest-init.sh"), "init")?;
    // The kernel execs /init directly: it must be executable whatever the
    // checkout's file mode.
    fs::set_permissions(staging.join("init"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("chmod init: {e}"))?;
    let recorder = Path::new(support::BIN);
    run(Command::new("strip").arg("-o").arg(staging.join("bin/oomrecorder")).arg(recorder))?;
    copy(Path::new("/bin/dd"), "bin/oomt-single")?;
    copy(Path::new("/bin/dd"), "bin/oomt-grphog")?;
    copy(Path::new("/bin/sleep"), "bin/oomt-sleeper")?;
    let mut libraries = BTreeSet::new();
    for binary in [recorder, Path::new("/bin/dd"), Path::new("/bin/sleep")] {
        // ldd lines: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vdso has no file.
        for line in run(Command::new("ldd").arg(binary))?.lines() {
            let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
            if path.starts_with('/') {
                libraries.insert(path.to_owned());
            }
        }
    }
    for library in &libraries {
        copy(Path::new(library), library)?;
    }
    let cpio = cache.join("initramfs.cpio");
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . -print0 | cpio --null --create --format=newc --quiet > '{}'",
        staging.display(),
        cpio.display()
    )))?;
    Ok(cpio)
}

/// Numbers in a package name after `prefix`, for ordering versions:
/// `6.1.0-56-cloud-amd64` → [0, 56], `6.12.117+deb12-cloud-amd64` → [117, 12].
fn version_key(rest: &str) -> Vec<u64> {
    rest.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

/// The newest `linux-image-<version>.*-cloud-amd64` package apt knows.
fn kernel_package(version: &str) -> Result<String> {
    let prefix = format!("linux-image-{version}.");
    let newest = || -> Result<Option<String>> {
        let names = run(Command::new("apt-cache").args(["pkgnames", &prefix]))?;
        Ok(names
            .lines()
            .filter(|n| n.ends_with("-cloud-amd64"))
            .filter(|n| n[prefix.len()..].starts_with(|c: char| c.is_ascii_digit()))
            .max_by_key(|n| version_key(&n[prefix.len()..]))
            .map(str::to_owned))
    };
    if let Some(name) = newest()? {
        return Ok(name);
    }
    // Package lists may be missing or stale on a fresh machine.
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    newest()?.ok_or_else(|| format!("no Debian package {prefix}*-cloud-amd64 in the apt lists"))
}

/// Downloads (once; cached in `cache`) and unpacks the kernel; returns vmlinuz.
fn fetch_kernel(version: &str, cache: &Path) -> Result<PathBuf> {
    let package = kernel_package(version)?;
    let unpacked = cache.join(&package);
    let find_vmlinuz = |dir: &Path| -> Option<PathBuf> {
        fs::read_dir(dir.join("boot"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
    };
    if let Some(vmlinuz) = find_vmlinuz(&unpacked) {
        return Ok(vmlinuz);
    }
    let deb_prefix = format!("{package}_");
    let cached_deb = |cache: &Path| {
        fs::read_dir(cache).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&deb_prefix) && n.ends_with(".deb")
            })
        })
    };
    let deb = match cached_deb(cache) {
        Some(deb) => deb,
        None => {
            run(Command::new("apt-get").args(["download", "-qq", &package]).current_dir(cache))?;
            cached_deb(cache).ok_or_else(|| format!("apt-get download {package} left no .deb"))?
        }
    };
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked))?;
    find_vmlinuz(&unpacked).ok_or_else(|| format!("{} has no boot/vmlinuz-*", deb.display()))
}

/// Boots the guest and returns its console output.
fn boot(vmlinuz: &Path, initramfs: &Path, log: &Path) -> Result<String> {
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-m", "1024", "-smp", "1", "-nodefaults", "-display", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-kernel"])
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        // loglevel=1 keeps kernel lines off the console (the guest prints the
        // whole log itself); log_buf_len holds a 50-task group kill's report.
        .args(["-append", "console=ttyS0 loglevel=1 log_buf_len=4M panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start qemu-system-x86_64: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let deadline = Instant::now() + GUEST_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait for qemu: {e}"))? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    let _ = fs::write(log, &console);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    match status {
        None => Err(format!(
            "guest did not power off within {} s; console in {}",
            GUEST_TIMEOUT.as_secs(),
            log.display()
        )),
        Some(s) if !s.success() => Err(format!("qemu exited with {s}: {}", stderr.trim())),
        Some(_) => Ok(console),
    }
}

/// The lines between `=== NAME BEGIN` and `=== NAME END`.
fn section<'a>(console: &'a str, name: &str) -> Result<Vec<&'a str>> {
    let begin = format!("=== {name} BEGIN");
    let end = format!("=== {name} END");
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    let start =
        lines.iter().position(|l| *l == begin).ok_or_else(|| format!("no {name} section in the console"))?;
    let stop =
        lines[start..].iter().position(|l| *l == end).ok_or_else(|| format!("{name} section not closed"))?;
    Ok(lines[start + 1..start + stop].to_vec())
}

fn run_kernel(version: &str, cache: &Path, initramfs: &Path) -> Result<String> {
    let vmlinuz = fetch_kernel(version, cache)?;
    let log = cache.join(format!("console-{version}.log"));
    let console = boot(&vmlinuz, initramfs, &log)?;
    if let Some(line) = console.lines().find(|l| l.starts_with("=== GUEST FAILED")) {
        return Err(format!("{line} (console in {})", log.display()));
    }
    let uname = console
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("=== GUEST kernel "))
        .ok_or_else(|| format!("the guest never started /init (console in {})", log.display()))?;
    let release = kernel_name(uname);
    verify(&release, &console).map_err(|e| format!("{release}: {e} (console in {})", log.display()))
}

/// `6.1.0-56-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (…)` (uname
/// -r and -v) → `6.1.158 (6.1.0-56-cloud-amd64)`: Debian's ABI name hides the
/// upstream version, which is what says which stable fixes a kernel has.
fn kernel_name(uname: &str) -> String {
    let abi = uname.split_whitespace().next().unwrap_or(uname);
    match uname.split("Debian ").nth(1).and_then(|v| v.split(['-', ' ']).next()) {
        Some(upstream) => format!("{upstream} ({abi})"),
        None => abi.to_owned(),
    }
}

/// Compares the guest's kernel log with the recorder's records.
fn verify(release: &str, console: &str) -> Result<String> {
    let exit = console.lines().find_map(|l| l.trim_end().strip_prefix("=== DAEMON EXIT "));
    if exit != Some("0") {
        return Err(format!("recorder exit status after SIGTERM: {exit:?}"));
    }
    // The kernel's victims: first `Killed process` line per pid (a group
    // kill prints the chosen task's line twice; mark_victim fires once).
    let mut kernel: BTreeMap<i64, support::KilledLine> = BTreeMap::new();
    for line in section(console, "KMSG")? {
        if let Some(killed) = support::parse_killed_line(line).filter(|k| k.comm.starts_with("oomt-")) {
            kernel.entry(killed.pid).or_insert(killed);
        }
    }
    let singles = kernel.values().filter(|k| k.comm == "oomt-single").count();
    let group = kernel.len() - singles;
    if singles != SINGLE_KILLS || group != GROUP_KILLS {
        return Err(format!(
            "the guest kernel killed {singles} single and {group} group victims, expected {SINGLE_KILLS} and {GROUP_KILLS}"
        ));
    }
    // The victims the reports were printed for (`oom-kill:…,pid=N,…`): their
    // `memory: usage` line is of the instant they were chosen.
    let chosen: BTreeSet<i64> = section(console, "KMSG")?
        .iter()
        .filter(|l| l.contains("oom-kill:"))
        .filter_map(|l| l.split(",pid=").nth(1)?.split(',').next()?.parse().ok())
        .collect();
    let doctor = section(console, "DOCTOR")?;
    if !doctor.contains(&"=== DOCTOR EXIT 0")
        || !doctor.iter().any(|l| l.starts_with("attach point: raw_tracepoint mark_victim"))
        || doctor.iter().any(|l| l.contains(" no "))
    {
        return Err(format!(
            "doctor does not report a raw tracepoint with every field:\n{}",
            doctor.join("\n")
        ));
    }
    let daemon_log = section(console, "DAEMON LOG")?;
    // A verifier rejection of the raw tracepoint program is a bug, not a
    // fallback to accept.
    if !daemon_log.iter().any(|l| l.contains("attached oom_mark_victim_raw to raw tracepoint mark_victim")) {
        return Err(format!("the raw tracepoint program was not attached:\n{}", daemon_log.join("\n")));
    }
    let absent: Vec<&str> = daemon_log
        .iter()
        .find_map(|l| l.split("oom:mark_victim lacks ").nth(1))
        .and_then(|rest| rest.split(':').next())
        .map(|list| list.split(", ").collect())
        .unwrap_or_default();

    let mut records: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for line in section(console, "RECORDS")?.into_iter().filter(|l| !l.trim().is_empty()) {
        let record: Value =
            serde_json::from_str(line).map_err(|e| format!("bad record JSON ({e}): {line}"))?;
        let pid = record["victim"]["pid"].as_i64().ok_or_else(|| format!("record without pid: {line}"))?;
        records.entry(pid).or_default().push(record);
    }

    let inodes: BTreeMap<&str, u64> = console
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("=== INODE "))
        .filter_map(|rest| rest.split_once(' ').and_then(|(path, ino)| Some((path, ino.parse().ok()?))))
        .collect();
    let mut problems = Vec::new();
    let mut recorded = 0;
    let (mut with_header, mut memory_lines) = (0, 0);
    for (pid, line) in &kernel {
        let Some(found) = records.get(pid) else {
            problems.push(format!("pid {pid} ({}) not recorded", line.comm));
            continue;
        };
        if found.len() != 1 {
            problems.push(format!("pid {pid} recorded {} times", found.len()));
            continue;
        }
        recorded += 1;
        let record = &found[0];
        // The join (kmsg reader + correlation) on cgroup v2: every eBPF event
        // met its own Killed process line.
        if record["sources"] != serde_json::json!(["ebpf", "kmsg", "cgroup"]) {
            problems.push(format!("pid {pid} sources {} (want ebpf+kmsg+cgroup)", record["sources"]));
        }
        if line.comm != "oomt-single" && record["oom"]["group_cgroup"].as_str() != Some("/group") {
            problems.push(format!("pid {pid} group_cgroup {} (want /group)", record["oom"]["group_cgroup"]));
        }
        // The v2 snapshot: the victim cgroup's own files, read after the kill.
        let want_limit = if line.comm == "oomt-single" { 32 << 20 } else { 64 << 20 };
        let c = &record["cgroup"];
        if c["memory_limit_bytes"].as_u64() != Some(want_limit)
            || !c["memory_stat"].as_object().is_some_and(|s| s.contains_key("anon"))
            || c["snapshot_delay_us"].is_null()
        {
            problems.push(format!(
                "pid {pid} cgroup snapshot: limit {} (want {want_limit}), memory.stat {}",
                c["memory_limit_bytes"],
                if c["memory_stat"].is_object() { "read" } else { "missing" }
            ));
        }
        let victim = &record["victim"];
        let want = [line.total_vm_kb, line.anon_rss_kb, line.file_rss_kb, line.shmem_rss_kb];
        let names = FIELDS.iter().map(|f| (*f, f.trim_end_matches("_kb")));
        for ((field, tp_name), kernel_value) in names.zip(want) {
            match victim[field].as_u64() {
                Some(v) if v == kernel_value => {}
                Some(v) => problems.push(format!("pid {pid} {field} {v} != kernel's {kernel_value}")),
                // Recorded as unknown because this kernel does not give it.
                None if absent.contains(&tp_name) => {}
                None => problems.push(format!("pid {pid} {field} is null but the kernel has the field")),
            }
        }
        // The kernel state read through BTF: on every record, and equal to
        // the report's own figures wherever the report has the task table.
        let missing = support::missing_kernel_state(record);
        if !missing.is_empty() {
            problems.push(format!("pid {pid}: {} null", missing.join(", ")));
        }
        let path = record["cgroup"]["path"].as_str().unwrap_or("");
        if inodes.get(path).is_none_or(|ino| record["cgroup"]["id"].as_u64() != Some(*ino)) {
            problems.push(format!(
                "pid {pid} cgroup {path} id {} (its inode: {:?})",
                record["cgroup"]["id"],
                inodes.get(path)
            ));
        }
        if record["cgroup"]["version"].as_u64() != Some(2) {
            problems.push(format!("pid {pid} cgroup version {} (want 2)", record["cgroup"]["version"]));
        }
        if record["oom"]["tasks"].is_array() {
            with_header += 1;
            let memory_line = chosen.contains(pid);
            memory_lines += usize::from(memory_line);
            problems.extend(support::kernel_state_problems(record, memory_line));
        }
        match victim["comm"].as_str() {
            Some(comm) if comm == line.comm => {}
            None if absent.contains(&"comm") => {}
            other => problems.push(format!("pid {pid} comm {other:?} != kernel's {:?}", line.comm)),
        }
    }
    let extra: Vec<_> = records.keys().filter(|pid| !kernel.contains_key(pid)).collect();
    if !extra.is_empty() {
        problems.push(format!("records for pids the kernel did not kill: {extra:?}"));
    }
    let total = kernel.len();
    if !problems.is_empty() {
        let more = problems.len().saturating_sub(10);
        problems.truncate(10);
        if more > 0 {
            problems.push(format!("and {more} more"));
        }
        return Err(format!("{recorded}/{total} kills recorded; {}", problems.join("; ")));
    }
    if memory_lines == 0 {
        return Err("no kill's report had its header: the BTF figures were compared with nothing".into());
    }
    let mut summary = format!(
        "{release}: {recorded}/{total} kills recorded, fields equal, joined to the kernel's lines, cgroup snapshots read; \
         raw tracepoint: BTF figures equal the report on {with_header} kills with a task table \
         ({memory_lines} with the memory line)"
    );
    if !absent.is_empty() {
        summary
            .push_str(&format!("; this kernel's tracepoint lacks {} (recorded as null)", absent.join(", ")));
    }
    Ok(summary)
}
