//! Fixtures shared by the integration tests: the real daemon under a
//! notify socket, a memory cgroup of the test's own, a real OOM victim, and
//! the kernel's own `Killed process` lines read from /dev/kmsg.
#![allow(dead_code)] // each test binary uses a different part

use std::{
    fs,
    io::{self, Read},
    os::unix::{fs::OpenOptionsExt, net::UnixDatagram, process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_oomrecorder");

/// The keys every `list --json` row carries: a contract scripts rely on
/// (only ever added to, never renamed or dropped).
pub const LIST_ROW_KEYS: [&str; 17] = [
    "id",
    "time",
    "kind",
    "pid",
    "comm",
    "cgroup",
    "anon_rss_kb",
    "memory_limit_bytes",
    "sources",
    "container_id",
    "pod_uid",
    "pod_namespace",
    "pod_name",
    "container_name",
    "unit",
    "runtime",
    "image",
];

/// Real-kernel tests need root. They do not skip: CI runs as root, and a run
/// that cannot exercise the kernel must fail loudly rather than pass empty.
pub fn require_root(test: &str) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test} makes real OOM kills and loads eBPF: it must run as root (CI does). \
         Not skipping, because a skipped real-kernel test proves nothing."
    );
}

/// A name no other process on the machine has: `comm` is at most 15 bytes.
pub fn unique_name(prefix: &str) -> String {
    let micros =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    let name = format!("{prefix}{:06x}", (micros ^ u64::from(std::process::id()) << 12) & 0xff_ffff);
    assert!(name.len() <= 15, "{name} is longer than TASK_COMM_LEN - 1");
    name
}

/// The wall clock now, Unix ns. Tests build their records relative to it,
/// never at a fixed date: `scripts/test` runs them again a year ahead.
pub fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

/// Runs the CLI and returns its output.
pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("OOMRECORDER_DB").output().expect("run oomrecorder")
}

/// The CLI's stdout as JSON, after checking it exited 0.
pub fn cli_json(args: &[&str]) -> serde_json::Value {
    let out = cli(args);
    assert!(out.status.success(), "oomrecorder {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("oomrecorder {args:?} printed invalid JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout))
    })
}

/// `oomrecorder run` as systemd would start it: `Type=notify`, so it is
/// ready (attached) when READY=1 arrives on $NOTIFY_SOCKET.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub fn start(db: &Path, dir: &Path) -> Daemon {
        Daemon::start_with(db, dir, &[])
    }

    /// As [`Daemon::start`], with more arguments to `oomrecorder run`.
    pub fn start_with(db: &Path, dir: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_after(db, dir, extra, None)
    }

    /// As [`Daemon::start_with`], run by `/bin/sh` after the shell commands
    /// `prelude` (a umask, a move into a cgroup, an oom_score_adj), which
    /// then execs the daemon in the same process.
    pub fn start_after(db: &Path, dir: &Path, extra: &[&str], prelude: Option<&str>) -> Daemon {
        let socket_path = dir.join("notify.sock");
        // A previous daemon of the same test may have left its socket file.
        let _ = fs::remove_file(&socket_path);
        let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let log = dir.join("daemon.log");
        let mut command = match prelude {
            Some(prelude) => {
                let mut sh = Command::new("/bin/sh");
                sh.arg("-c").arg(format!("set -e\n{prelude}\nexec \"$0\" \"$@\"")).arg(BIN);
                sh
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(["run", "--db"])
            .arg(db)
            .args(extra)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn oomrecorder run");
        let mut daemon = Daemon { child: Some(child), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut buf = [0u8; 512];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) if String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "READY=1") => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("notify socket: {e}"),
            }
            if let Some(status) = daemon.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited before READY=1 ({status}):\n{}", daemon.log());
            }
            assert!(Instant::now() < deadline, "no READY=1 within 60 s:\n{}", daemon.log());
        }
        daemon
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGTERM, then wait; returns the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not stop within 30 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A memory cgroup of the test's own, child of this process's memory cgroup
/// (v1) or of the cgroup2 hierarchy (v2), with a hard limit and no swap.
/// Removed on drop, after killing anything left in it.
pub struct MemCgroup {
    pub path: PathBuf,
    pub version: u8,
}

impl MemCgroup {
    pub fn create(name: &str, limit_bytes: u64) -> MemCgroup {
        let self_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
        // cgroup v1: the memory controller has its own hierarchy
        // ("N:memory:/path"); v2: the unified line "0::/path".
        let v1 = self_cgroup.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == "memory").then(|| path.to_owned())
        });
        let (path, version) = if let Some(own) = v1 {
            (Path::new("/sys/fs/cgroup/memory").join(own.trim_start_matches('/')).join(name), 1)
        } else {
            let root = Path::new("/sys/fs/cgroup");
            let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            assert!(
                controllers.split_whitespace().any(|c| c == "memory"),
                "no memory controller on cgroup v1 or v2: cannot make a safe OOM kill"
            );
            // The root cgroup is exempt from the no-internal-processes rule,
            // so a child there can always enable the memory controller.
            (root.join(name), 2)
        };
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        let cgroup = MemCgroup { path, version };
        if version == 1 {
            cgroup.write("memory.limit_in_bytes", &limit_bytes.to_string());
            // memsw must stay >= limit; equal means no swap for the cgroup.
            if cgroup.path.join("memory.memsw.limit_in_bytes").exists() {
                cgroup.write("memory.memsw.limit_in_bytes", &limit_bytes.to_string());
            }
        } else {
            cgroup.write("memory.max", &limit_bytes.to_string());
            if cgroup.path.join("memory.swap.max").exists() {
                cgroup.write("memory.swap.max", "0");
            }
        }
        cgroup
    }

    /// Changes the hard limit (and, on v1, memory+swap with it).
    pub fn set_limit(&self, limit_bytes: u64) {
        if self.version == 1 {
            let memsw = self.path.join("memory.memsw.limit_in_bytes").exists();
            // memsw may never be below the limit: lower the limit first, raise memsw first.
            let current: u64 = self.read("memory.limit_in_bytes").parse().unwrap();
            if memsw && limit_bytes > current {
                self.write("memory.memsw.limit_in_bytes", &limit_bytes.to_string());
            }
            self.write("memory.limit_in_bytes", &limit_bytes.to_string());
            if memsw && limit_bytes <= current {
                self.write("memory.memsw.limit_in_bytes", &limit_bytes.to_string());
            }
        } else {
            self.write("memory.max", &limit_bytes.to_string());
        }
    }

    /// Bytes charged to the cgroup now.
    pub fn usage(&self) -> u64 {
        let file = if self.version == 1 { "memory.usage_in_bytes" } else { "memory.current" };
        self.read(file).parse().unwrap()
    }

    /// One of the cgroup's files, trimmed.
    pub fn read(&self, file: &str) -> String {
        let path = self.path.join(file);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())).trim().to_owned()
    }

    fn write(&self, file: &str, value: &str) {
        let path = self.path.join(file);
        fs::write(&path, value).unwrap_or_else(|e| panic!("write {value} to {}: {e}", path.display()));
    }

    /// Runs `victim` (a copy of dd, so its comm is the copy's file name) in
    /// this cgroup, also capped by `ulimit -v`, allocating 4x the limit. Returns
    /// its pid and how it ended.
    pub fn run_hog(&self, victim: &Path) -> (u32, ExitStatus) {
        self.run_hog_adjusted(victim, 0)
    }

    /// As [`MemCgroup::run_hog`], with the hog's oom_score_adj set to `adj`
    /// first (raising it needs no privilege).
    pub fn run_hog_adjusted(&self, victim: &Path, adj: i32) -> (u32, ExitStatus) {
        let adjust =
            if adj == 0 { String::new() } else { format!("echo {adj} > /proc/self/oom_score_adj && ") };
        let script = format!(
            "echo $$ > {procs} && {adjust}ulimit -v 1048576 && exec {victim} if=/dev/zero of=/dev/null bs=256M count=1",
            procs = self.path.join("cgroup.procs").display(),
            victim = victim.display()
        );
        let mut child = Command::new("/bin/sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hog");
        let pid = child.id();
        let status = child.wait().unwrap();
        (pid, status)
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        if let Ok(procs) = fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in procs.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                // SAFETY: kill(2); the pids are in the test's own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // As a container runtime does: remove the cgroup the moment it is
        // empty, retrying while the dying task still holds it.
        for _ in 0..2_000 {
            if fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        eprintln!("warning: could not remove test cgroup {}", self.path.display());
    }
}

/// A copy of dd named `name`, so the kernel reports the victim as `name`.
pub fn victim_binary(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    fs::copy("/bin/dd", &path).expect("copy /bin/dd");
    path
}

/// Asserts the hog was killed by SIGKILL (the OOM killer), not anything else.
pub fn assert_oom_killed(pid: u32, status: ExitStatus) {
    assert_eq!(status.signal(), Some(libc::SIGKILL), "hog {pid} was not killed by SIGKILL: {status}");
}

/// The kernel's own figures from one `Killed process` line
/// (mm/oom_kill.c, `__oom_kill_process`, 5.4+ format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KilledLine {
    pub pid: i64,
    pub comm: String,
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
}

/// `...Killed process 7558 (hog) total-vm:207776kB, anon-rss:65280kB, file-rss:1676kB, shmem-rss:0kB, UID:0 ...`
pub fn parse_killed_line(text: &str) -> Option<KilledLine> {
    let rest = &text[text.find("Killed process ")? + "Killed process ".len()..];
    let (pid, rest) = rest.split_once(" (")?;
    // comm may itself contain ") ": the figures start after the last ") total-vm:".
    let split = rest.rfind(") total-vm:")?;
    let comm = &rest[..split];
    let figures = &rest[split + 2..];
    let field = |key: &str| -> Option<u64> {
        let start = figures.find(key)? + key.len();
        let digits: String = figures[start..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some(KilledLine {
        pid: pid.trim().parse().ok()?,
        comm: comm.to_owned(),
        total_vm_kb: field("total-vm:")?,
        anon_rss_kb: field("anon-rss:")?,
        file_rss_kb: field("file-rss:")?,
        shmem_rss_kb: field("shmem-rss:")?,
    })
}

/// The kernel's own account of the kills a test makes, gathered so that it
/// cannot miss one: `/dev/kmsg` opened at its end and read by a thread from
/// then on (a storm logs more than the ring buffer holds, so the oracle must
/// keep up with the kernel as the daemon does, not read it afterwards),
/// every overrun (EPIPE) and sequence gap counted, and `/proc/vmstat`
/// `oom_kill` read at the start to cross-check the count.
///
/// Kills are keyed by the pids the test saw die of SIGKILL, never by comm:
/// a victim killed between its shell's `exec` and the new comm (the kernel
/// may pick the shell while its sibling's memory is still being reaped) is
/// reported under the shell's name.
pub struct Kmsg {
    texts: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    overruns: std::sync::Arc<std::sync::atomic::AtomicU64>,
    gaps: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    vmstat_start: u64,
    /// Wall clock (Unix ns) when the test began to watch.
    pub since_ns: i64,
}

/// `/proc/vmstat` `oom_kill`: one per task the kernel killed, machine-wide
/// (`count_vm_event(OOM_KILL)` in mm/oom_kill.c `__oom_kill_process`).
pub fn vmstat_oom_kill() -> u64 {
    let text = fs::read_to_string("/proc/vmstat").expect("read /proc/vmstat");
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .expect("/proc/vmstat has oom_kill (4.13+)")
}

impl Kmsg {
    pub fn open_at_end() -> Kmsg {
        use std::sync::{atomic::Ordering, Arc, Mutex};
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .expect("open /dev/kmsg");
        // SAFETY: lseek on an fd we own; SEEK_END on /dev/kmsg moves to the
        // next record to be written (Documentation/ABI/testing/dev-kmsg).
        let rc = unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(&file), 0, libc::SEEK_END) };
        assert!(rc >= 0, "lseek /dev/kmsg: {}", io::Error::last_os_error());
        let since_ns = now_ns();
        let vmstat_start = vmstat_oom_kill();
        let texts = Arc::new(Mutex::new(Vec::new()));
        let overruns = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let gaps = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (texts, overruns, gaps, stop) =
                (Arc::clone(&texts), Arc::clone(&overruns), Arc::clone(&gaps), Arc::clone(&stop));
            std::thread::spawn(move || {
                // CONSOLE_EXT_LOG_MAX is 8 KiB: one record always fits.
                let mut buf = vec![0u8; 16384];
                let mut next_seq: Option<u64> = None;
                loop {
                    match file.read(&mut buf) {
                        // One read returns one record: `prio,seq,usec,flags;text\n` + continuation lines.
                        Ok(n) => {
                            let record = String::from_utf8_lossy(&buf[..n]);
                            let (header, body) = record.split_once(';').unwrap_or(("", ""));
                            if let Some(seq) = header.split(',').nth(1).and_then(|s| s.parse::<u64>().ok()) {
                                if let Some(next) = next_seq.filter(|next| seq > *next) {
                                    gaps.fetch_add(seq - next, Ordering::Relaxed);
                                }
                                next_seq = Some(seq + 1);
                            }
                            texts.lock().unwrap().push(body.lines().next().unwrap_or("").to_owned());
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                            overruns.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("read /dev/kmsg: {e}"),
                    }
                }
            })
        };
        Kmsg { texts, overruns, gaps, stop, reader: Some(reader), vmstat_start, since_ns }
    }

    /// The kernel's `Killed process` line of each of `pids` (victims the
    /// test saw die of SIGKILL), in the order of `pids`, waiting up to
    /// `timeout` for all of them. Fails, naming why, when the truth is
    /// incomplete: the kernel counted fewer kills than the test saw, or a
    /// line is missing (the test's reader fell behind, or the kernel never
    /// printed it). A test then fails on its oracle, not on the product.
    pub fn killed(&mut self, pids: &[u32], timeout: Duration) -> Vec<KilledLine> {
        self.killed_with_summaries(pids, timeout).0
    }

    /// As [`Kmsg::killed`], plus the pids named by `oom-kill:` summary lines:
    /// the kills whose report header the kernel printed (it rate-limits
    /// headers to 10 per 5 s, mm/oom_kill.c `oom_rs`).
    pub fn killed_with_summaries(&mut self, pids: &[u32], timeout: Duration) -> (Vec<KilledLine>, Vec<i64>) {
        use std::{collections::HashMap, sync::atomic::Ordering};
        let deadline = Instant::now() + timeout;
        loop {
            // Oldest first per pid: a pid reused within the test is two kills.
            let mut lines: HashMap<i64, std::collections::VecDeque<KilledLine>> = HashMap::new();
            let mut summaries = Vec::new();
            for text in self.texts.lock().unwrap().iter() {
                if let Some(line) = parse_killed_line(text) {
                    lines.entry(line.pid).or_default().push_back(line);
                }
                if let Some(pid) = text.strip_prefix("oom-kill:").and_then(|t| t.split(",pid=").nth(1)) {
                    summaries.extend(pid.split(',').next().and_then(|p| p.parse::<i64>().ok()));
                }
            }
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for &pid in pids {
                match lines.get_mut(&i64::from(pid)).and_then(|l| l.pop_front()) {
                    Some(line) => found.push(line),
                    None => missing.push(pid),
                }
            }
            if missing.is_empty() || Instant::now() > deadline {
                let counted = vmstat_oom_kill().saturating_sub(self.vmstat_start);
                assert!(
                    counted >= pids.len() as u64,
                    "the test saw {} victims die of SIGKILL but /proc/vmstat counted {counted} OOM kills \
                     since it began: its truth is wrong, not the recorder",
                    pids.len()
                );
                let (overruns, gaps) =
                    (self.overruns.load(Ordering::Relaxed), self.gaps.load(Ordering::Relaxed));
                assert!(
                    missing.is_empty(),
                    "the test's truth is incomplete, not the recorder: no Killed process line for {} of \
                     {} victims ({missing:?}); its /dev/kmsg reader had {overruns} overruns and {gaps} \
                     records in sequence gaps; /proc/vmstat counted {counted} kills",
                    missing.len(),
                    pids.len()
                );
                summaries.retain(|p| pids.iter().any(|q| i64::from(*q) == *p));
                return (found, summaries);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kmsg {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

#[test]
fn killed_lines_parse_with_awkward_names() {
    let line = "Memory cgroup out of memory: Killed process 7558 (a b) (c) total-vm:207776kB, anon-rss:65280kB, file-rss:1676kB, shmem-rss:12kB, UID:0 pgtables:172kB oom_score_adj:0";
    assert_eq!(
        parse_killed_line(line),
        Some(KilledLine {
            pid: 7558,
            comm: "a b) (c".to_owned(),
            total_vm_kb: 207_776,
            anon_rss_kb: 65_280,
            file_rss_kb: 1_676,
            shmem_rss_kb: 12,
        })
    );
    assert_eq!(parse_killed_line("oom_reaper: reaped process 7558 (x), now anon-rss:0kB"), None);
}

/// The kernel-state figures (read by the raw tracepoint program through BTF)
/// that must equal the kernel's own report of the same kill: the victim's row
/// of the task table (mm/oom_kill.c `dump_task`; `rss_anon`, `rss_file`,
/// `rss_shmem` from 6.8), the `memory: usage …, limit …` line (for these
/// tests the OOM memcg is the victim's own) and `task_memcg=`. Returns what
/// differs; empty when all agree. Only for a record whose report has the header.
/// `memory_line`: compare the usage line too; true for the victim the report
/// was printed for, false for the other members of a `memory.oom.group`
/// kill, marked later while the first victims' memory is already being freed.
pub fn kernel_state_problems(record: &serde_json::Value, memory_line: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let pid = record["victim"]["pid"].as_i64().unwrap_or(-1);
    let v = &record["victim"];
    let oom = &record["oom"];
    let Some(row) =
        oom["tasks"].as_array().and_then(|rows| rows.iter().find(|r| number(&r["pid"]) == Some(pid)))
    else {
        return vec![format!("pid {pid}: its row is not in the report's task table")];
    };
    let column = |name: &str| number(&row[name]);
    let mut same = |what: &str, ours: Option<i64>, kernel: Option<i64>| {
        if ours != kernel {
            problems.push(format!("pid {pid} {what}: recorded {ours:?}, kernel's report {kernel:?}"));
        }
    };
    let rss = &v["rss_pages"];
    // The 6.8+ columns; older kernels print only `rss` (their sum).
    if row.get("rss_anon").is_some() {
        same("rss_anon", rss["anon"].as_i64(), column("rss_anon"));
        same("rss_file", rss["file"].as_i64(), column("rss_file"));
        same("rss_shmem", rss["shmem"].as_i64(), column("rss_shmem"));
    }
    let sum = ["anon", "file", "shmem"].iter().map(|k| rss[k].as_i64()).sum::<Option<i64>>();
    same("rss", sum, column("rss"));
    same("pgtables_bytes", v["pgtables_bytes"].as_i64(), column("pgtables_bytes"));
    same("swapents", rss["swapents"].as_i64(), column("swapents"));
    same("oom_score_adj", v["oom_score_adj"].as_i64(), column("oom_score_adj"));
    same("tgid", v["tgid"].as_i64(), column("tgid"));
    let at_kill = &record["cgroup"]["at_kill"];
    let kb = |value: &serde_json::Value| value.as_i64().map(|b| b / 1024);
    same("memory limit kB", kb(&at_kill["memory_limit_bytes"]), oom["memory_limit_kb"].as_i64());
    if memory_line {
        // The report's usage line is read in dump_header(), the counters at
        // mark_victim a moment later; in between the per-CPU charge stocks
        // (up to MEMCG_CHARGE_BATCH = 64 pages per CPU, mm/memcontrol.c) may
        // be drained back. Seen once: 65304 kB at the kill vs 65536 kB in
        // the report. Anything beyond that slack is a real difference.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        let slack_kb = 64 * 4 * cpus;
        match (kb(&at_kill["memory_usage_bytes"]), oom["memory_usage_kb"].as_i64()) {
            (Some(ours), Some(kernel)) if (ours - kernel).abs() <= slack_kb => {}
            (ours, kernel) => problems.push(format!(
                "pid {pid} memory usage kB: recorded {ours:?}, kernel's report {kernel:?} (slack {slack_kb} kB)"
            )),
        }
        problems.extend(memory_stat_problems(record));
    }
    if record["cgroup"]["path"] != oom["task_cgroup"] {
        problems.push(format!(
            "pid {pid} cgroup path {} != task_memcg {}",
            record["cgroup"]["path"], oom["task_cgroup"]
        ));
    }
    problems
}

/// The victim cgroup's `memory.stat` read at the kill against the one the
/// kernel's report printed for the same kill (mm/memcontrol.c
/// `mem_cgroup_print_oom_meminfo`, which flushes the stats first, just
/// before the victim is marked). cgroup v2 prints our keys; v1 prints its
/// own names (mm/memcontrol-v1.c `memcg1_stat_format`), hierarchical with a
/// `total_` prefix. They may differ by what the kernel had not flushed:
/// the record's own bound.
pub fn memory_stat_problems(record: &serde_json::Value) -> Vec<String> {
    const V1: [(&str, &str); 13] = [
        ("anon", "total_rss"),
        ("file", "total_cache"),
        ("shmem", "total_shmem"),
        ("file_mapped", "total_mapped_file"),
        ("file_dirty", "total_dirty"),
        ("file_writeback", "total_writeback"),
        ("swapcached", "total_swapcached"),
        ("anon_thp", "total_rss_huge"),
        ("inactive_anon", "total_inactive_anon"),
        ("active_anon", "total_active_anon"),
        ("inactive_file", "total_inactive_file"),
        ("active_file", "total_active_file"),
        ("unevictable", "total_unevictable"),
    ];
    let pid = record["victim"]["pid"].as_i64().unwrap_or(-1);
    let at_kill = &record["cgroup"]["at_kill"];
    let Some(ours) = at_kill["memory_stat"].as_object() else {
        return vec![format!("pid {pid}: no memory.stat read at the kill: {at_kill}")];
    };
    let Some(report) = record["oom"]["memory_stat"].as_object() else {
        return vec![format!("pid {pid}: the report printed no memory.stat")];
    };
    // The record's own bound; on kernels that do not count pending updates
    // (before 6.8) the per-CPU batching bound: each CPU holds back up to
    // MEMCG_CHARGE_BATCH pages of updates per item (64 since 5.19, 32
    // before, include/linux/memcontrol.h) and flushes them together with
    // the update that crossed it (5.10 mm/memcontrol.c __mod_memcg_state:
    // `if (abs(x) > MEMCG_CHARGE_BATCH)` adds x, batch and update, at once;
    // 5.13+ flush when the pending count passes MEMCG_CHARGE_BATCH × CPUs,
    // memcg_rstat_updated). A flush between the report and the read moves
    // an item by that much (seen on 5.10: 33 pages, one CPU).
    const MEMCG_CHARGE_BATCH_MAX: i64 = 64;
    let bound_pages = at_kill["memory_stat_lag_bound_pages"].as_i64().unwrap_or_else(|| {
        at_kill["online_cpus"].as_i64().map_or(0, |cpus| (MEMCG_CHARGE_BATCH_MAX + 1) * cpus)
    });
    let slack = bound_pages * 4096;
    let v1 = report.contains_key("total_rss");
    let pairs: Vec<(&str, String)> = if v1 {
        V1.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    } else {
        ours.keys().map(|k| (k.as_str(), k.clone())).collect()
    };
    let mut problems = Vec::new();
    let mut compared = 0;
    for (key, theirs) in pairs {
        let Some(kernel) = report.get(&theirs).and_then(number) else {
            continue;
        };
        let Some(at) = ours.get(key).and_then(|v| v.as_i64()) else {
            problems.push(format!("pid {pid}: {key} not read at the kill, the report has {theirs} {kernel}"));
            continue;
        };
        compared += 1;
        if (at - kernel).abs() > slack {
            problems.push(format!(
                "pid {pid} memory.stat {key}: at the kill {at}, report's {theirs} {kernel} (slack {slack})"
            ));
        }
    }
    if compared < 5 {
        problems.push(format!("pid {pid}: only {compared} memory.stat items could be compared"));
    }
    problems
}

/// The kernel-state figures every raw-tracepoint record carries, header or
/// not; returns the keys that are null.
pub fn missing_kernel_state(record: &serde_json::Value) -> Vec<&'static str> {
    let v = &record["victim"];
    let c = &record["cgroup"];
    [
        ("victim.rss_pages", &v["rss_pages"]),
        ("victim.pgtables_bytes", &v["pgtables_bytes"]),
        ("victim.age_ms", &v["age_ms"]),
        ("victim.nodename", &v["nodename"]),
        ("victim.badness", &v["badness"]),
        ("cgroup.path", &c["path"]),
        ("cgroup.id", &c["id"]),
        ("cgroup.at_kill", &c["at_kill"]),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_null())
    .map(|(name, _)| name)
    .collect()
}

/// A figure of the kernel's report as the JSON gives it: a number (strings
/// holding numbers were the JSON of earlier versions).
pub fn number(value: &serde_json::Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str()?.parse().ok())
}

/// The kernel's "no limit" in each unit it prints it in: PAGE_COUNTER_MAX
/// pages (include/linux/page_counter.h, LONG_MAX / PAGE_SIZE) as bytes and
/// as kB with 4 KiB pages, and as pages.
pub const SENTINELS: [u64; 3] = [9_223_372_036_854_771_712, 9_007_199_254_740_988, 2_251_799_813_685_247];

/// Keys whose values are text by nature, even when the text is all digits
/// (a process may be named `1234`).
const TEXT_KEYS: [&str; 8] = ["comm", "name", "cmdline", "exe", "nodename", "lines", "text", "boot_id"];

/// The JSON contract's two rules over every key of a `show --json` record:
/// no kernel sentinel anywhere (a limit that is none is `null`), and
/// numbers as numbers in every section (no number inside a string).
/// Returns each breach with its path.
pub fn json_contract_problems(record: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, path: &str, key: &str, text: bool, problems: &mut Vec<String>) {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, &format!("{path}.{k}"), k, text || TEXT_KEYS.contains(&k.as_str()), problems);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), key, text, problems);
                }
            }
            Value::Number(n) => {
                let big = n.as_u64().is_some_and(|n| {
                    SENTINELS.contains(&n)
                        || n >= 1 << 62
                        || (key.ends_with("_kb") && n >= 1 << 52)
                        || (key.ends_with("_pages") && n >= 1 << 46)
                });
                if big {
                    problems.push(format!("{path} = {n}: the kernel's no-limit sentinel, not null"));
                }
            }
            Value::String(s)
                if !text
                    && (s.parse::<i64>().is_ok() || s.parse::<u64>().is_ok() || s.parse::<f64>().is_ok()) =>
            {
                problems.push(format!("{path} = {s:?}: a number in a string"));
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    walk(record, "", "", false, &mut problems);
    problems
}

#[test]
fn the_contract_walk_finds_sentinels_and_numbers_in_strings() {
    let bad = serde_json::json!({
        "oom": {"memsw_limit_kb": 9_007_199_254_740_988u64, "memory_stat": {"anon": "4096"}},
        "cgroup": {"at_kill": {"memory_high_bytes": 9_223_372_036_854_771_712u64}},
        "victim": {"comm": "1234", "cmdline": "sleep 5"},
        "kernel_report": {"lines": ["42"]},
    });
    let problems = json_contract_problems(&bad);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let good = serde_json::json!({"oom": {"memsw_limit_kb": null, "memory_stat": {"anon": 4096}}, "time_ns": 1_764_000_000_000_000_000i64});
    assert!(json_contract_problems(&good).is_empty());
}
