//! Kernel matrix: boots the users' kernels under qemu (TCG) with an
//! initramfs holding busybox, the freshly built recorder and its libraries,
//! makes real OOM kills inside (tests/kernels/guest-init.sh), and checks
//! every victim the guest kernel reported against what the recorder stored.
//!
//! The guests (`tests/kernels/run [GUEST...]`, default all four):
//! - `5.10`: Debian 11's newest `linux-image-5.10.0-*-cloud-amd64`, from
//!   bullseye and bullseye-security through an apt source list of the
//!   matrix's own (the host's apt configuration is never touched);
//! - `6.1`, `6.12`: Debian 12's cloud kernels, from the host's apt lists;
//! - `6.1-v1`: the 6.1 kernel with the memory controller mounted as a
//!   cgroup v1 hierarchy (the others use cgroup v2).
//!
//! On cgroup v2 each guest makes 3 single kills, a memory.oom.group kill of
//! 50 tasks and one of 5,000 (what a Kubernetes container OOM is since 1.28);
//! v1 has no memory.oom.group and makes the single kills only. The truth is
//! the guest kernel's own `Killed process` lines (the guest's log buffer is
//! sized to hold them all) checked against its `/proc/vmstat` `oom_kill`.
//! Figures this kernel does not give are accepted as null only where the
//! recorder's `doctor` says, on that kernel, that they are absent.
//!
//! Every record is checked through its `list` row (one per victim, joined
//! to its Killed process line, the kernel's anon-rss); the single kills, each
//! group's hog and 5 members of each group in full (`show`: BTF figures
//! against the report's task table, the cgroup snapshot, the inode). Around
//! each group kill the guest reads the eBPF program's own counters with
//! bpftool, so the ring buffer's losses are known even when the daemon never
//! read them. The guest prints its kernel log, records and daemon log
//! gzip+base64 (serial output is slow under TCG); they are decoded next to
//! the console log as `target/kernels/guest-NAME.{kmsg.log,records.jsonl,daemon.log}`.
//!
//! Why an initramfs and not a 9p/virtiofs share of the host's root: Debian's
//! cloud kernels have no 9p and virtio-fs only as a module, and an initramfs
//! keeps the guest hermetic (nothing of the host's root but the files copied
//! in) and boots in seconds.
//!
//! A plain `cargo test` does not run it (it is `test = false`). Exits
//! non-zero on any miss; a missing download or a qemu failure is a failure,
//! never a skip.
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
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

const DEFAULT_GUESTS: [&str; 4] = ["5.10", "6.1", "6.12", "6.1-v1"];
/// Single kills per guest, in a 32 MiB cgroup.
const SINGLE_KILLS: usize = 3;
/// memory.oom.group kills on cgroup v2: tasks in each group (one hog, the
/// rest sleepers), in this order.
const GROUP_KILLS: [usize; 2] = [50, 5_000];
/// TCG is slow; a guest that has not powered off by then is stuck.
const GUEST_TIMEOUT: Duration = Duration::from_secs(900);
/// Fields compared with the kernel's `Killed process` line: the record's key,
/// the `oom:mark_victim` field it comes from on the tracepoint, and the BTF
/// figure (a `doctor` field name) it comes from on the raw tracepoint.
const FIELDS: [(&str, &str, &str); 4] = [
    ("total_vm_kb", "total_vm", "victim.total_vm_kb"),
    ("anon_rss_kb", "anon_rss", "victim.rss_pages"),
    ("file_rss_kb", "file_rss", "victim.rss_pages"),
    ("shmem_rss_kb", "shmem_rss", "victim.rss_pages"),
];
/// The kernel state read through BTF that every raw-tracepoint record
/// carries (tests/support `missing_kernel_state`), and the `doctor` fields
/// whose absence on a kernel explains a null.
const KERNEL_STATE: [(&str, &[&str]); 8] = [
    ("victim.rss_pages", &["victim.rss_pages", "victim mm"]),
    ("victim.pgtables_bytes", &["victim.pgtables_bytes", "victim mm"]),
    ("victim.age_ms", &["victim.age_ms"]),
    ("victim.nodename", &["victim.nodename"]),
    ("victim.badness", &["victim.rss_pages", "victim.pgtables_bytes", "victim.oom_score_adj", "victim mm"]),
    ("cgroup.path", &["cgroup.path", "cgroup (memory css)"]),
    ("cgroup.id", &["cgroup.id", "cgroup.path", "cgroup (memory css)"]),
    ("cgroup.at_kill", &["cgroup.at_kill memory usage/limit", "cgroup (memory css)"]),
];

/// The `doctor` fields that support's `kernel_state_problems` compares with
/// the kernel's report (task table row, memory line, memory.stat, task_memcg).
const COMPARED_WITH_REPORT: [&str; 9] = [
    "victim mm",
    "victim.tgid",
    "victim.oom_score_adj",
    "victim.rss_pages",
    "victim.pgtables_bytes",
    "cgroup (memory css)",
    "cgroup.path",
    "cgroup.at_kill memory usage/limit",
    "cgroup.at_kill.memory_stat",
];

type Result<T> = std::result::Result<T, String>;

/// One guest of the matrix.
#[derive(Clone, Debug)]
struct Guest {
    /// As named on the command line: `6.1`, `6.1-v1`.
    name: String,
    /// The kernel's major.minor, the package name's prefix.
    version: String,
    /// The memory controller's hierarchy: 1 or 2.
    cgroup: u8,
}

impl Guest {
    fn parse(name: &str) -> Result<Guest> {
        let (version, cgroup) = match name.strip_suffix("-v1") {
            Some(version) => (version, 1),
            None => (name, 2),
        };
        let known = ["5.10", "6.1", "6.12"];
        if !known.contains(&version) {
            return Err(format!("unknown guest {name:?}: one of 5.10, 6.1, 6.12, each optionally -v1"));
        }
        Ok(Guest { name: name.to_owned(), version: version.to_owned(), cgroup })
    }

    /// Group kills this guest makes: none on v1 (no memory.oom.group).
    fn groups(&self) -> &'static [usize] {
        if self.cgroup == 2 {
            &GROUP_KILLS
        } else {
            &[]
        }
    }
}

fn main() -> ExitCode {
    let names: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let names = if names.is_empty() { DEFAULT_GUESTS.iter().map(|v| v.to_string()).collect() } else { names };
    let guests = match names.iter().map(|n| Guest::parse(n)).collect::<Result<Vec<_>>>() {
        Ok(guests) => guests,
        Err(e) => {
            println!("{e}");
            return ExitCode::FAILURE;
        }
    };
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
            println!("0 passed, {} failed", guests.len());
            return ExitCode::FAILURE;
        }
    };
    for guest in &guests {
        let guest_started = Instant::now();
        match run_guest(guest, &cache, &initramfs) {
            Ok(line) => {
                passed += 1;
                println!("{line} ({} s)", guest_started.elapsed().as_secs());
            }
            // The summary line first (it starts with the kernel's version),
            // then what failed.
            Err(Failed::Checks { line, problems }) => {
                failed += 1;
                println!("{line} ({} s)\n  FAILED: {problems}", guest_started.elapsed().as_secs());
            }
            Err(Failed::Run(e)) => {
                failed += 1;
                println!("{}: FAILED: {e} ({} s)", guest.name, guest_started.elapsed().as_secs());
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

/// Builds `initramfs.cpio`: busybox, /init, the recorder (stripped), dd
/// copied under the victims' names, the sleepers' static forking program,
/// and every library `ldd` names.
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
    // The group kills' sleepers: forked by one small static program
    // (tests/kernels/sleepers.rs), not a fork and an exec of busybox each.
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    run(Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .arg("-o")
        .arg(staging.join("bin/oomt-sleeper"))
        .arg(root.join("tests/kernels/sleepers.rs")))?;
    copy(&root.join("tests/kernels/guest-init.sh"), "init")?;
    // The kernel execs /init directly: it must be executable whatever the
    // checkout's file mode.
    fs::set_permissions(staging.join("init"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("chmod init: {e}"))?;
    // The release build users run (tests/kernels/run builds it): an
    // unoptimised recorder would understate how fast it drains a storm.
    let recorder =
        std::env::var_os("OOMRECORDER_MATRIX_BIN").map_or_else(|| PathBuf::from(support::BIN), PathBuf::from);
    let recorder = recorder.as_path();
    run(Command::new("strip").arg("-o").arg(staging.join("bin/oomrecorder")).arg(recorder))?;
    copy(Path::new("/bin/dd"), "bin/oomt-single")?;
    copy(Path::new("/bin/dd"), "bin/oomt-grphog")?;
    // Reads the eBPF program's counters in the guest (scripts/setup installs it).
    let bpftool = Path::new("/usr/sbin/bpftool");
    copy(bpftool, "bin/bpftool")?;
    let mut libraries = BTreeSet::new();
    for binary in [recorder, Path::new("/bin/dd"), bpftool] {
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

/// Where a kernel package comes from: the host's own apt configuration
/// (Debian 12), or a source list of the matrix's own for Debian 11, with its
/// own lists and cache under `target/kernels/apt-bullseye/`, so the host's
/// apt sources, lists and cache stay as they are.
struct Apt {
    /// `-o` options for apt-get and apt-cache; empty for the host's.
    options: Vec<String>,
}

impl Apt {
    fn host() -> Apt {
        Apt { options: Vec::new() }
    }

    /// bullseye and bullseye-security, checked with the host's Debian
    /// archive keyring. The lists are fetched when missing or a day old, so
    /// the newest 5.10 upload is used.
    fn bullseye(cache: &Path) -> Result<Apt> {
        let dir = cache.join("apt-bullseye");
        let (lists, apt_cache) = (dir.join("lists"), dir.join("cache"));
        for d in [lists.join("partial"), apt_cache.join("archives/partial")] {
            fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        }
        let sources = dir.join("sources.list");
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        fs::write(
            &sources,
            format!(
                "deb [signed-by={keyring}] http://deb.debian.org/debian bullseye main\n\
                 deb [signed-by={keyring}] http://deb.debian.org/debian-security bullseye-security main\n"
            ),
        )
        .map_err(|e| format!("write {}: {e}", sources.display()))?;
        let apt = Apt {
            options: vec![
                format!("Dir::Etc::sourcelist={}", sources.display()),
                "Dir::Etc::sourceparts=-".to_owned(),
                format!("Dir::State::Lists={}", lists.display()),
                format!("Dir::Cache={}", apt_cache.display()),
                "DPkg::Lock::Timeout=600".to_owned(),
            ],
        };
        let fresh = fs::read_dir(&lists)
            .map_err(|e| format!("read {}: {e}", lists.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .any(|t| SystemTime::now().duration_since(t).is_ok_and(|age| age < Duration::from_secs(86_400)));
        if !fresh {
            run(apt.command("apt-get").args(["update", "-qq"]))?;
        }
        Ok(apt)
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        for option in &self.options {
            cmd.arg("-o").arg(option);
        }
        cmd
    }
}

/// Numbers in a package name after `prefix`, for ordering versions:
/// `6.1.0-56-cloud-amd64` → [0, 56], `6.12.117+deb12-cloud-amd64` → [117, 12].
fn version_key(rest: &str) -> Vec<u64> {
    rest.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

/// The newest `linux-image-<version>.*-cloud-amd64` package apt knows, and
/// its version.
fn kernel_package(version: &str, apt: &Apt) -> Result<(String, String)> {
    let prefix = format!("linux-image-{version}.");
    let newest = || -> Result<Option<String>> {
        let names = run(apt.command("apt-cache").args(["pkgnames", &prefix]))?;
        Ok(names
            .lines()
            .filter(|n| n.ends_with("-cloud-amd64"))
            .filter(|n| n[prefix.len()..].starts_with(|c: char| c.is_ascii_digit()))
            .max_by_key(|n| version_key(&n[prefix.len()..]))
            .map(str::to_owned))
    };
    let name = match newest()? {
        Some(name) => name,
        None => {
            // Package lists may be missing or stale on a fresh machine.
            run(apt.command("apt-get").args(["update", "-qq"]))?;
            newest()?.ok_or_else(|| format!("no Debian package {prefix}*-cloud-amd64 in the apt lists"))?
        }
    };
    // Debian reuses the ABI name (5.10.0-46) for several uploads: the
    // candidate's version names the cache entry.
    let shown = run(apt.command("apt-cache").args(["show", "--no-all-versions", &name]))?;
    let package_version = shown
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .ok_or_else(|| format!("apt-cache show {name}: no Version"))?
        .trim()
        .to_owned();
    Ok((name, package_version))
}

/// Downloads (once; cached in `cache`) and unpacks the kernel; returns vmlinuz.
fn fetch_kernel(guest: &Guest, cache: &Path) -> Result<PathBuf> {
    let apt = if guest.version == "5.10" { Apt::bullseye(cache)? } else { Apt::host() };
    let (package, package_version) = kernel_package(&guest.version, &apt)?;
    let unpacked = cache.join(format!("{package}_{package_version}"));
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
    // apt names the file `<package>_<version with ':' as %3a>_amd64.deb`.
    let deb_prefix = format!("{package}_{}_", package_version.replace(':', "%3a"));
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
            run(apt.command("apt-get").args(["download", "-qq", &package]).current_dir(cache))?;
            cached_deb(cache).ok_or_else(|| format!("apt-get download {package} left no .deb"))?
        }
    };
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked))?;
    find_vmlinuz(&unpacked).ok_or_else(|| format!("{} has no boot/vmlinuz-*", deb.display()))
}

/// Boots the guest and returns its console output.
fn boot(guest: &Guest, vmlinuz: &Path, initramfs: &Path, log: &Path) -> Result<String> {
    let groups: Vec<String> = guest.groups().iter().map(usize::to_string).collect();
    // loglevel=1 keeps kernel lines off the console (the guest prints the
    // whole log itself); log_buf_len holds the whole log of the 5,000-task
    // group kill (a task table row, a Killed process line and a reaper line
    // per task: about 2.5 MiB), so the truth the host compares with is
    // complete. 5,000 sleepers and their page tables need about 0.5 GiB.
    let append = format!(
        "console=ttyS0 loglevel=1 log_buf_len=16M panic=-1 oomt.cgroup=v{} oomt.groups={}",
        guest.cgroup,
        groups.join(",")
    );
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-m", "2048", "-smp", "1", "-nodefaults", "-display", "none", "-serial", "stdio"])
        .args(["-no-reboot", "-kernel"])
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", &append])
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

/// A section the guest printed gzip+base64 (`=== NAME GZ BEGIN`), decoded;
/// also written to `keep` for whoever reads the logs.
fn gz_section(console: &str, name: &str, keep: &Path) -> Result<String> {
    let encoded = section(console, &format!("{name} GZ"))?.join("\n");
    let scratch = suffixed(keep, "b64");
    fs::write(&scratch, encoded).map_err(|e| format!("write {}: {e}", scratch.display()))?;
    let decoded = run(Command::new("sh").arg("-c").arg(format!(
        "base64 -d '{}' | gzip -dc > '{}'",
        scratch.display(),
        keep.display()
    )));
    let _ = fs::remove_file(&scratch);
    decoded.map_err(|e| format!("the guest's {name} section does not decode: {e}"))?;
    fs::read_to_string(keep).map_err(|e| format!("read {}: {e}", keep.display()))
}

/// `bpftool map dump -j` of the program's per-CPU counters: index → sum
/// over CPUs. bpftool prints `formatted` values where the map has BTF, raw
/// little-endian hex bytes otherwise.
fn parse_counters(json: &str) -> Option<BTreeMap<u32, u64>> {
    let entries: Value = serde_json::from_str(json).ok()?;
    let le = |bytes: &Value| -> Option<u64> {
        let bytes = bytes.as_array()?;
        bytes.iter().enumerate().try_fold(0u64, |sum, (i, b)| {
            let b = u64::from_str_radix(b.as_str()?.trim_start_matches("0x"), 16).ok()?;
            Some(sum | b << (8 * i))
        })
    };
    let mut counters = BTreeMap::new();
    for entry in entries.as_array()? {
        let (key, values): (u64, Option<Vec<u64>>) = match entry.get("formatted") {
            Some(f) => {
                (f["key"].as_u64()?, f["values"].as_array()?.iter().map(|v| v["value"].as_u64()).collect())
            }
            None => {
                (le(&entry["key"])?, entry["values"].as_array()?.iter().map(|v| le(&v["value"])).collect())
            }
        };
        counters.insert(u32::try_from(key).ok()?, values?.iter().sum());
    }
    Some(counters)
}

/// `path` + `.suffix` (`with_extension` would eat the `.1` of `guest-6.1`).
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", path.display()))
}

/// The value after `=== PREFIX` on the console's first such line.
fn marker<'a>(console: &'a str, prefix: &str) -> Option<&'a str> {
    let prefix = format!("=== {prefix}");
    console.lines().find_map(|l| l.trim_end().strip_prefix(prefix.as_str()))
}

/// How a guest failed: before its checks (download, qemu, the guest's own
/// set-up), or in them, with its summary line.
enum Failed {
    Run(String),
    Checks { line: String, problems: String },
}

impl From<String> for Failed {
    fn from(e: String) -> Failed {
        Failed::Run(e)
    }
}

fn run_guest(guest: &Guest, cache: &Path, initramfs: &Path) -> std::result::Result<String, Failed> {
    let vmlinuz = fetch_kernel(guest, cache)?;
    let log = cache.join(format!("console-{}.log", guest.name));
    let console = boot(guest, &vmlinuz, initramfs, &log)?;
    if let Some(line) = console.lines().find(|l| l.starts_with("=== GUEST FAILED")) {
        return Err(Failed::Run(format!("{line} (console in {})", log.display())));
    }
    let uname = marker(&console, "GUEST kernel ")
        .ok_or_else(|| format!("the guest never started /init (console in {})", log.display()))?;
    let release = kernel_name(uname);
    let outcome = verify(guest, &console, &cache.join(format!("guest-{}", guest.name)));
    let line = format!("{release}: cgroup v{}, {}", guest.cgroup, outcome.summary.join(", "));
    if outcome.problems.is_empty() {
        Ok(line)
    } else {
        let mut problems = outcome.problems;
        let more = problems.len().saturating_sub(10);
        problems.truncate(10);
        if more > 0 {
            problems.push(format!("and {more} more"));
        }
        Err(Failed::Checks {
            line,
            problems: format!("{} (console in {})", problems.join("; "), log.display()),
        })
    }
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

/// What `doctor --json` says this kernel gives.
struct Doctor {
    raw_tracepoint: bool,
    /// `doctor` field names absent on this kernel (BTF), with the reason.
    absent_btf: BTreeMap<String, String>,
    /// `oom:mark_victim` fields this kernel's tracepoint lacks.
    absent_tracepoint: Vec<String>,
}

impl Doctor {
    fn parse(console: &str) -> Result<Doctor> {
        let text = section(console, "DOCTOR")?;
        if !text.contains(&"=== DOCTOR EXIT 0") {
            return Err(format!("doctor says the recorder cannot run:\n{}", text.join("\n")));
        }
        let json = section(console, "DOCTOR JSON")?.join("");
        let doctor: Value =
            serde_json::from_str(&json).map_err(|e| format!("doctor --json ({e}): {json}"))?;
        let raw_tracepoint = doctor["attach"]["point"].as_str() == Some("raw_tracepoint mark_victim");
        let absent_btf = doctor["fields"]
            .as_array()
            .ok_or("doctor --json has no fields")?
            .iter()
            .filter(|f| f["available"] != Value::Bool(true))
            .map(|f| {
                (f["name"].as_str().unwrap_or("?").to_owned(), f["reason"].as_str().unwrap_or("?").to_owned())
            })
            .collect();
        // `<root>: oom:mark_victim with every field` or `... without a, b`.
        let tracefs = doctor["tracefs"]["detail"].as_str().ok_or_else(|| {
            format!("doctor found no tracefs after the daemon mounted it: {}", doctor["tracefs"])
        })?;
        let absent_tracepoint = tracefs
            .split("oom:mark_victim without ")
            .nth(1)
            .map(|list| list.split(", ").map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Doctor { raw_tracepoint, absent_btf, absent_tracepoint })
    }

    /// Whether `doctor` explains a null in the figure read from `btf_fields`
    /// (raw tracepoint) or `tracepoint_field` (tracepoint).
    fn excuses(&self, btf_fields: &[&str], tracepoint_field: Option<&str>) -> bool {
        if self.raw_tracepoint {
            btf_fields.iter().any(|f| self.absent_btf.contains_key(*f))
        } else {
            tracepoint_field.is_some_and(|f| self.absent_tracepoint.iter().any(|a| a == f))
        }
    }

    /// Whether doctor says this kernel lacks any of these BTF figures (or
    /// the raw tracepoint is not used).
    fn excuses_state_any(&self, fields: &[&str]) -> bool {
        !self.raw_tracepoint || self.excuses(fields, None)
    }

    /// Whether a kernel-state key may be null on this kernel.
    fn excuses_state(&self, key: &str) -> bool {
        // Without the raw tracepoint, no figure is read through BTF.
        !self.raw_tracepoint || KERNEL_STATE.iter().any(|(k, fields)| *k == key && self.excuses(fields, None))
    }

    fn highlights(&self) -> String {
        let mut parts = vec![if self.raw_tracepoint { "raw tracepoint" } else { "tracepoint" }.to_owned()];
        if !self.absent_btf.is_empty() {
            parts.push(format!(
                "BTF lacks {}",
                self.absent_btf.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.absent_tracepoint.is_empty() {
            parts.push(format!("oom:mark_victim lacks {}", self.absent_tracepoint.join(", ")));
        }
        parts.join("; ")
    }
}

/// The guest's kernel log, read as the truth: each victim's first `Killed
/// process` line (a group kill prints the chosen task's line twice;
/// mark_victim fires once), and which kill it belongs to (the `task_memcg`
/// of the last `oom-kill:` summary before it).
struct KernelTruth {
    victims: BTreeMap<i64, (support::KilledLine, String)>,
    /// `Killed process` lines per kill (the chosen victim of a group kill
    /// is killed, and counted in `/proc/vmstat` `oom_kill`, twice).
    lines: BTreeMap<String, usize>,
    /// Processes the guest did not mean to be killed (`Killed process` of a
    /// comm outside oomt-*): the recorder itself, when it ran out of memory.
    strays: Vec<String>,
    /// Victims the reports were printed for (`oom-kill:…,pid=N,…`): their
    /// `memory: usage` line is of the instant they were chosen.
    chosen: BTreeSet<i64>,
}

impl KernelTruth {
    fn parse(kmsg: &[&str]) -> KernelTruth {
        let mut victims = BTreeMap::new();
        let mut lines = BTreeMap::new();
        let mut strays = Vec::new();
        let mut chosen = BTreeSet::new();
        let mut cgroup = String::new();
        for line in kmsg {
            if let Some(summary) = line.split("oom-kill:").nth(1) {
                if let Some(memcg) = summary.split(",task_memcg=").nth(1).and_then(|t| t.split(',').next()) {
                    cgroup = memcg.to_owned();
                }
                chosen.extend(
                    summary.split(",pid=").nth(1).and_then(|p| p.split(',').next()?.parse::<i64>().ok()),
                );
            }
            match support::parse_killed_line(line) {
                Some(killed) if killed.comm.starts_with("oomt-") => {
                    *lines.entry(cgroup.clone()).or_default() += 1;
                    victims.entry(killed.pid).or_insert((killed, cgroup.clone()));
                }
                Some(killed) => strays.push(format!(
                    "{} (pid {}, anon-rss {} kB)",
                    killed.comm, killed.pid, killed.anon_rss_kb
                )),
                None => {}
            }
        }
        KernelTruth { victims, lines, strays, chosen }
    }

    fn in_cgroup(&self, cgroup: &str) -> usize {
        self.victims.values().filter(|(_, c)| c == cgroup).count()
    }
}

/// The daemon's final account (its `stopped:` log line).
#[derive(Default)]
struct Stopped {
    seen: u64,
    received: u64,
    ringbuf_full: u64,
    undecodable: u64,
    unstored: u64,
    kmsg_records: u64,
    kmsg_lost: u64,
}

impl Stopped {
    /// `stopped: victims_seen 5053, events_received 2414, records_stored …,
    /// ringbuf_full 2639, decode 0, kmsg_records 29000, kmsg_overrun 0, …`:
    /// each counter under its `status --json` key.
    fn parse(daemon_log: &[&str]) -> Option<Stopped> {
        let line = daemon_log.iter().find_map(|l| l.split("stopped: ").nth(1))?;
        let counts: BTreeMap<&str, u64> = line
            .split(", ")
            .filter_map(|pair| pair.split_once(' ').and_then(|(k, v)| Some((k, v.trim().parse().ok()?))))
            .collect();
        let get = |key: &str| counts.get(key).copied();
        Some(Stopped {
            seen: get("victims_seen")?,
            received: get("events_received")?,
            ringbuf_full: get("ringbuf_full")?,
            undecodable: get("decode")?,
            unstored: get("write_failures")?,
            kmsg_records: get("kmsg_records")?,
            kmsg_lost: get("kmsg_overrun")?,
        })
    }
}

/// A kernel's summary line (its parts) and whatever failed.
struct Outcome {
    summary: Vec<String>,
    problems: Vec<String>,
}

/// Guest seconds at each `=== TIME phase seconds` marker.
fn times(console: &str) -> BTreeMap<String, f64> {
    console
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("=== TIME "))
        .filter_map(|rest| {
            rest.split_once(' ').and_then(|(phase, t)| Some((phase.to_owned(), t.parse().ok()?)))
        })
        .collect()
}

/// Compares the guest's kernel log with the recorder's records.
/// `keep`: where the decoded kernel log and records are written.
fn verify(guest: &Guest, console: &str, keep: &Path) -> Outcome {
    let mut summary = Vec::new();
    let mut problems = Vec::new();
    if let Err(e) = verify_into(guest, console, keep, &mut summary, &mut problems) {
        problems.push(e);
    }
    Outcome { summary, problems }
}

fn verify_into(
    guest: &Guest,
    console: &str,
    keep: &Path,
    summary: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let exit = marker(console, "DAEMON EXIT ");
    if exit != Some("0") {
        problems.push(format!("recorder exit status after SIGTERM: {exit:?}"));
    }
    // The records the host compares are only as complete as these commands.
    if let Some(exit) = marker(console, "LIST EXIT ").filter(|e| e.trim() != "0") {
        problems
            .push(format!("`oomrecorder list` exited {} in the guest: its rows are missing", exit.trim()));
    }
    if let Some(n) = marker(console, "SHOW FAILED ").filter(|n| n.trim() != "0") {
        problems.push(format!("`oomrecorder show` failed {} times in the guest", n.trim()));
    }
    let kmsg_text = gz_section(console, "KMSG", &suffixed(keep, "kmsg.log"))?;
    let kmsg: Vec<&str> = kmsg_text.lines().collect();
    let truth = KernelTruth::parse(&kmsg);
    let doctor = Doctor::parse(console)?;
    let daemon_log_text = gz_section(console, "DAEMON LOG", &suffixed(keep, "daemon.log"))?;
    let daemon_log: Vec<&str> = daemon_log_text.lines().collect();
    // A verifier rejection of the raw tracepoint program is a bug, not a
    // fallback to accept: the daemon must attach what doctor planned.
    let want_attach = if doctor.raw_tracepoint {
        "attached oom_mark_victim_raw to raw tracepoint mark_victim"
    } else {
        "attached oom_mark_victim to tracepoint oom:mark_victim"
    };
    if !daemon_log.iter().any(|l| l.contains(want_attach)) {
        problems.push(format!("the daemon did not log {want_attach:?} as doctor planned"));
    }
    if !truth.strays.is_empty() {
        problems.push(format!("the guest kernel also killed {}", truth.strays.join(", ")));
    }
    // The daemon's final account; when it never stopped cleanly, what
    // `status` said after the kills.
    let clean_stop = Stopped::parse(&daemon_log).is_some();
    let stopped = match Stopped::parse(&daemon_log) {
        Some(stopped) => stopped,
        None => {
            problems.push("the daemon logged no `stopped:` account".into());
            let status: Value = serde_json::from_str(&section(console, "STATUS")?.join(""))
                .map_err(|e| format!("status --json ({e})"))?;
            let n = |v: &Value| v.as_u64().unwrap_or(0);
            Stopped {
                seen: n(&status["pipeline"]["victims_seen"]),
                received: n(&status["pipeline"]["events_received"]),
                ringbuf_full: n(&status["losses"]["ringbuf_full"]),
                undecodable: n(&status["losses"]["decode"]),
                unstored: n(&status["losses"]["write_failures"]),
                kmsg_records: n(&status["pipeline"]["kmsg_records"]),
                kmsg_lost: n(&status["losses"]["kmsg_overrun"]),
            }
        }
    };

    // Every record's list row, by pid; and the sampled records in full.
    let mut rows: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for line in section(console, "LIST")?.into_iter().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).map_err(|e| format!("bad list row ({e}): {line}"))?;
        let pid = row["pid"].as_i64().ok_or_else(|| format!("list row without pid: {line}"))?;
        rows.entry(pid).or_default().push(row);
    }
    let mut records: BTreeMap<i64, Value> = BTreeMap::new();
    let records_text = gz_section(console, "RECORDS", &suffixed(keep, "records.jsonl"))?;
    for line in records_text.lines().filter(|l| !l.trim().is_empty()) {
        let record: Value =
            serde_json::from_str(line).map_err(|e| format!("bad record JSON ({e}): {line}"))?;
        let pid = record["victim"]["pid"].as_i64().ok_or_else(|| format!("record without pid: {line}"))?;
        records.insert(pid, record);
    }
    let inodes: BTreeMap<&str, u64> = console
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("=== INODE "))
        .filter_map(|rest| rest.split_once(' ').and_then(|(path, ino)| Some((path, ino.parse().ok()?))))
        .collect();

    // The kills the guest made, as the kernel counted them.
    let singles = truth.in_cgroup("/single");
    if singles != SINGLE_KILLS {
        problems.push(format!("the guest kernel made {singles} single kills, expected {SINGLE_KILLS}"));
    }
    summary.push(format!("single kills: {}/{singles}", recorded_in(&truth, &rows, "/single")));
    for (i, tasks) in guest.groups().iter().enumerate() {
        let name = format!("group{}", i + 1);
        let cgroup = format!("/{name}");
        let killed = truth.in_cgroup(&cgroup);
        let counted: Option<usize> =
            marker(console, &format!("GROUP {name} vmstat_oom_kill ")).and_then(|n| n.trim().parse().ok());
        // The truth's own check: the kernel's count of the kills it made
        // equals its lines (a log that lost lines would be a wrong truth).
        let printed = truth.lines.get(&cgroup).copied().unwrap_or(0);
        if counted != Some(printed) || killed != *tasks {
            problems.push(format!(
                "{cgroup}: the guest kernel killed {killed} tasks of a group of {tasks}, and printed {printed} \
                 Killed process lines but counted {counted:?} kills (vmstat oom_kill)"
            ));
        }
        let with_event = truth
            .victims
            .iter()
            .filter(|(_, (_, c))| *c == cgroup)
            .filter(|(pid, _)| rows.get(pid).is_some_and(|r| has_source(&r[0], "ebpf")))
            .count();
        let recorded = recorded_in(&truth, &rows, &cgroup);
        let mut part = format!("group kill of {tasks}: {with_event}/{killed}");
        let mut notes = Vec::new();
        if recorded != with_event {
            notes.push(format!("+{} recovered from the kernel log", recorded - with_event));
        }
        // What the eBPF program itself counted during this kill (common's
        // `counter::SEEN` = 0, `counter::RINGBUF_FULL` = 1).
        let counters =
            |when: &str| marker(console, &format!("COUNTERS {name} {when} ")).and_then(parse_counters);
        match (counters("before"), counters("after")) {
            (Some(before), Some(after)) => {
                let delta = |i: u32| after.get(&i).unwrap_or(&0) - before.get(&i).unwrap_or(&0);
                notes.push(format!("the program saw {}, {} ring buffer full", delta(0), delta(1)));
            }
            _ => notes.push("the program's counters were not readable".into()),
        }
        part.push_str(&format!(" ({})", notes.join("; ")));
        if *tasks == *GROUP_KILLS.iter().max().unwrap_or(&0) {
            // The big one is the figure the issue asks for.
            part = part.replacen(&format!("group kill of {tasks}"), "group kill", 1);
        }
        summary.push(part);
        if with_event != killed {
            problems.push(format!(
                "{cgroup}: {} of {killed} group-kill victims have no record made at the kill (eBPF); \
                 {} of them recovered from the kernel log",
                killed - with_event,
                recorded - with_event
            ));
        }
    }
    // The daemon's count of events lost to a full ring buffer is the
    // program's own (cumulative since it was loaded: the last reading).
    let last_group = guest.groups().len();
    if let Some(program) = marker(console, &format!("COUNTERS group{last_group} after "))
        .and_then(parse_counters)
        .and_then(|c| c.get(&1).copied())
    {
        if clean_stop && program != stopped.ringbuf_full {
            problems.push(format!(
                "the eBPF program counted {program} events dropped on a full ring buffer, the daemon {}",
                stopped.ringbuf_full
            ));
        }
    }
    let times = times(console);
    let span = |from: &str, to: &str| Some(times.get(to)? - times.get(from)?);
    let losses = format!(
        "the daemon counted lost: ring buffer {}, kmsg {}",
        stopped.ringbuf_full + stopped.undecodable,
        stopped.kmsg_lost
    );
    summary.push(losses);

    // Each victim of the kernel's: exactly one record, with the kernel's
    // figures (list row), and in full (show) where it was shown.
    let mut full = 0;
    let (mut with_header, mut memory_lines) = (0, 0);
    let mut without_event = 0;
    let mut unrecorded: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (pid, (line, cgroup)) in &truth.victims {
        let Some(found) = rows.get(pid) else {
            unrecorded.entry(cgroup.as_str()).or_default().push(*pid);
            continue;
        };
        if found.len() != 1 {
            problems.push(format!("pid {pid} recorded {} times", found.len()));
            continue;
        }
        let row = &found[0];
        let event = has_source(row, "ebpf");
        without_event += usize::from(!event);
        if !has_source(row, "kmsg") {
            problems.push(format!(
                "pid {pid} sources {} (its Killed process line was not joined)",
                row["sources"]
            ));
        }
        if row["comm"].as_str() != Some(line.comm.as_str())
            && !(event && doctor.excuses(&["victim.comm"], Some("comm")))
        {
            problems.push(format!("pid {pid} comm {} != kernel's {:?}", row["comm"], line.comm));
        }
        match row["anon_rss_kb"].as_u64() {
            Some(v) if v == line.anon_rss_kb => {}
            other => {
                problems.push(format!("pid {pid} anon_rss_kb {other:?} != kernel's {}", line.anon_rss_kb))
            }
        }
        let Some(record) = records.get(pid) else { continue };
        full += 1;
        if event {
            let (h, m) = check_record(guest, &doctor, &truth, &inodes, *pid, line, cgroup, record, problems);
            with_header += h;
            memory_lines += m;
        } else {
            // Recovered from the log after its event was lost: the log's
            // figures only, and the loss must have been counted.
            check_figures(&doctor, *pid, line, record, false, problems);
        }
    }
    for (cgroup, pids) in &unrecorded {
        let shown: Vec<String> = pids.iter().take(5).map(i64::to_string).collect();
        let more = if pids.len() > 5 { ", …" } else { "" };
        problems.push(format!(
            "{} victims in {cgroup} not recorded at all (pids {}{more})",
            pids.len(),
            shown.join(", ")
        ));
    }
    let extra: Vec<_> = rows.keys().filter(|pid| !truth.victims.contains_key(pid)).collect();
    if !extra.is_empty() {
        problems.push(format!("records for pids the kernel did not kill: {extra:?}"));
    }
    // Every kill without its event must be a loss the daemon counted.
    let counted_losses = stopped.ringbuf_full + stopped.undecodable;
    if (without_event as u64) > counted_losses {
        problems.push(format!(
            "{without_event} records have no eBPF event but the daemon counted {counted_losses} events lost"
        ));
    }
    if stopped.unstored > 0 {
        problems.push(format!("{} records were not stored", stopped.unstored));
    }
    if memory_lines == 0
        && doctor.raw_tracepoint
        && !doctor.excuses(&["cgroup.at_kill memory usage/limit"], None)
    {
        problems.push("no kill's report had its header: the BTF figures were compared with nothing".into());
    }
    let total = truth.victims.len();
    // The daemon's self-audit (`status`, read while it ran, after the kills):
    // with every kill recorded it must say the kernel's count matches.
    let unrecorded = truth.victims.keys().filter(|p| !rows.contains_key(p)).count();
    let status: Value = serde_json::from_str(&section(console, "STATUS")?.join(""))
        .map_err(|e| format!("status --json ({e})"))?;
    // /proc/vmstat oom_kill counts a group kill's chosen victim twice
    // (mm/oom_kill.c: oom_kill_memcg_member calls __oom_kill_process for it
    // again, which counts OOM_KILL again): the audit must say exactly how
    // many, from the kernel's repeated lines, and then match.
    let double_counted = truth.lines.values().sum::<usize>().saturating_sub(total) as u64;
    let audit_ok = status["audit"]["matches"] == Value::Bool(true)
        && status["audit"]["counted_twice"].as_u64() == Some(double_counted);
    if unrecorded == 0 && !audit_ok {
        problems.push(format!(
            "every kill is recorded but `status` says: {} (counted twice: {}; the kernel printed {} Killed \
             process lines for {total} victims)",
            status["audit"]["summary"],
            status["audit"]["counted_twice"],
            truth.lines.values().sum::<usize>()
        ));
    }
    summary.push(format!(
        "{}/{total} kills recorded, {full} checked in full ({with_header} against the report's task table, \
         {memory_lines} with its memory line)",
        total - truth.victims.keys().filter(|p| !rows.contains_key(p)).count()
    ));
    summary.push(format!(
        "pipeline: {} seen, {} received, {} kernel log records",
        stopped.seen, stopped.received, stopped.kmsg_records
    ));
    summary.push(format!("doctor: {}", doctor.highlights()));
    if let Some(peak) = marker(console, "DAEMON PEAK RSS ").filter(|p| !p.trim().is_empty()) {
        summary.push(format!("recorder peak RSS {}", peak.trim()));
    }
    let mut timing = vec![format!("guest {:.0} s", times.get("printed").copied().unwrap_or(f64::NAN))];
    if let Some(&big) = GROUP_KILLS.iter().max().filter(|_| guest.cgroup == 2) {
        let name = format!("group{}", GROUP_KILLS.len());
        if let (Some(start), Some(kill)) = (
            span("singles", &format!("{name}-started")),
            span(&format!("{name}-started"), &format!("{name}-emptied")),
        ) {
            timing.push(format!("{big} tasks started in {start:.1} s, killed and gone in {kill:.1} s"));
        }
    }
    summary.push(timing.join(", "));
    Ok(())
}

fn has_source(row: &Value, source: &str) -> bool {
    row["sources"].as_array().is_some_and(|s| s.iter().any(|v| v == source))
}

/// The kernel's victims in `cgroup` that have a list row.
fn recorded_in(truth: &KernelTruth, rows: &BTreeMap<i64, Vec<Value>>, cgroup: &str) -> usize {
    truth.victims.iter().filter(|(pid, (_, c))| c == cgroup && rows.contains_key(pid)).count()
}

/// The `Killed process` figures of a full record. `event`: the record has
/// its eBPF event, so a null is only right where doctor says so.
fn check_figures(
    doctor: &Doctor,
    pid: i64,
    line: &support::KilledLine,
    record: &Value,
    event: bool,
    problems: &mut Vec<String>,
) {
    let victim = &record["victim"];
    let want = [line.total_vm_kb, line.anon_rss_kb, line.file_rss_kb, line.shmem_rss_kb];
    for ((field, tp_name, btf_name), kernel_value) in FIELDS.iter().zip(want) {
        match victim[*field].as_u64() {
            Some(v) if v == kernel_value => {}
            Some(v) => problems.push(format!("pid {pid} {field} {v} != kernel's {kernel_value}")),
            None if event && doctor.excuses(&[btf_name, "victim mm"], Some(tp_name)) => {}
            None => problems.push(format!("pid {pid} {field} is null but the kernel printed it")),
        }
    }
}

/// Checks one record that has its eBPF event; returns whether its report had
/// the task table, and whether it was the report's chosen victim.
#[allow(clippy::too_many_arguments)]
fn check_record(
    guest: &Guest,
    doctor: &Doctor,
    truth: &KernelTruth,
    inodes: &BTreeMap<&str, u64>,
    pid: i64,
    line: &support::KilledLine,
    cgroup: &str,
    record: &Value,
    problems: &mut Vec<String>,
) -> (usize, usize) {
    let single = cgroup == "/single";
    // The join (kmsg reader + correlation): every eBPF event met its own
    // Killed process line, and the snapshot of its cgroup.
    if record["sources"] != serde_json::json!(["ebpf", "kmsg", "cgroup"]) {
        problems.push(format!("pid {pid} sources {} (want ebpf+kmsg+cgroup)", record["sources"]));
    }
    if !single && record["oom"]["group_cgroup"].as_str() != Some(cgroup) {
        problems.push(format!("pid {pid} group_cgroup {} (want {cgroup})", record["oom"]["group_cgroup"]));
    }
    // The snapshot: the victim cgroup's own files, read after the kill. A
    // group's limit is set by the guest above its sleepers' usage.
    let c = &record["cgroup"];
    let stat_key = if guest.cgroup == 1 { "rss" } else { "anon" };
    let limit_ok = if single {
        c["memory_limit_bytes"].as_u64() == Some(32 << 20)
    } else {
        c["memory_limit_bytes"].is_u64()
    };
    if !limit_ok
        || !c["memory_stat"].as_object().is_some_and(|s| s.contains_key(stat_key))
        || c["snapshot_delay_us"].is_null()
    {
        problems.push(format!(
            "pid {pid} cgroup snapshot: limit {}, memory.stat {}",
            c["memory_limit_bytes"],
            if c["memory_stat"].is_object() { "read" } else { "missing" }
        ));
    }
    check_figures(doctor, pid, line, record, true, problems);
    // The kernel state read through BTF: on every record unless doctor says
    // this kernel lacks it, and equal to the report's own figures wherever
    // the report has the task table.
    let missing: Vec<_> =
        support::missing_kernel_state(record).into_iter().filter(|key| !doctor.excuses_state(key)).collect();
    if !missing.is_empty() {
        problems.push(format!("pid {pid}: {} null (doctor says this kernel has them)", missing.join(", ")));
    }
    if !doctor.excuses_state("cgroup.id") {
        let path = c["path"].as_str().unwrap_or("");
        if inodes.get(path).is_none_or(|ino| c["id"].as_u64() != Some(*ino)) {
            problems.push(format!(
                "pid {pid} cgroup {path} id {} (its inode: {:?})",
                c["id"],
                inodes.get(path)
            ));
        }
    }
    if c["version"].as_u64() != Some(u64::from(guest.cgroup)) {
        problems.push(format!("pid {pid} cgroup version {} (want {})", c["version"], guest.cgroup));
    }
    let (mut with_header, mut memory_line) = (0, 0);
    // The comparison with the report's task table and memory lines needs
    // every figure it compares; a kernel that lacks one (per doctor) skips it.
    if record["oom"]["tasks"].is_array() && !doctor.excuses_state_any(&COMPARED_WITH_REPORT) {
        with_header = 1;
        let chosen = truth.chosen.contains(&pid);
        memory_line = usize::from(chosen);
        problems.extend(support::kernel_state_problems(record, chosen));
    }
    match record["victim"]["comm"].as_str() {
        Some(comm) if comm == line.comm => {}
        None if doctor.excuses(&["victim.comm"], Some("comm")) => {}
        other => problems.push(format!("pid {pid} comm {other:?} != kernel's {:?}", line.comm)),
    }
    (with_header, memory_line)
}
