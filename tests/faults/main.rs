//! The fault suite (issue 19): each fault the recorder must survive, made
//! to happen for real on this machine, with the daemon and the CLI as
//! shipped. Every test asserts that nothing was lost and that every loss
//! was counted. Needs root (tmpfs mounts, memory cgroups, real OOM kills,
//! eBPF); never skips.
//!
//! - [`disk_full`]: the database on a small tmpfs filled during a storm of
//!   kills, and a fresh database on a tiny tmpfs with kills waiting in the
//!   kernel log at start.
//! - [`damaged`]: pages of the kills table overwritten; readers say so, the
//!   daemon sets the file aside and recovers what the kernel log holds.
//! - [`hostile_import`]: `/dev/zero`, endless input, a 50 MB line,
//!   impossible figures, user-written kmsg records.
//! - [`configuration`]: an empty path, a directory, a read-only parent.
//! - [`access`]: file modes whatever the umask, an unprivileged reader, a
//!   reading group, command lines redacted or left out.
//! - [`pressure`]: the daemon in a memory cgroup at its limit keeps recording.
//!
//! Safety: every allocating process runs in a memory cgroup of its own
//! with a hard limit and under `ulimit -v`, with a unique name; cgroups,
//! mounts and daemons are removed by `Drop` on every exit path.
// Test code: a failed unwrap is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../support/mod.rs"]
mod support;

mod access;
mod configuration;
mod damaged;
mod disk_full;
mod hostile_import;
mod pressure;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::*;

/// The hogs' cgroup limit, as in the real-kernel tests.
pub const LIMIT: u64 = 64 << 20;

/// One fault at a time: each counts the kills it makes, mounts and fills
/// file systems, and a neighbour's storm would only add noise.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial(test: &str) -> MutexGuard<'static, ()> {
    require_root(test);
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tmpfs of a given size, mounted on a temporary directory, unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        Tmpfs::mount_with(&format!("size={size},mode=0755"))
    }

    pub fn mount_with(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        run(Command::new("mount").args(["-t", "tmpfs", "-o", options, "oomrecorder-faults"]).arg(&path));
        Tmpfs { path, _dir: dir }
    }

    /// Grows (or shrinks) it in place.
    pub fn resize(&self, size: &str) {
        run(Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.path));
    }

    /// Fills what is left with a file, until the kernel says ENOSPC.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
            let block = vec![0x5au8; chunk];
            while file.write_all(&block).is_ok() {}
        }
        let _ = file.sync_all();
        path
    }

    /// Bytes free, as statvfs says.
    pub fn free(&self) -> u64 {
        let c_path = std::ffi::CString::new(self.path.to_str().unwrap()).unwrap();
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: statvfs fills the struct for a NUL-terminated path.
        assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) }, 0);
        // SAFETY: statvfs returned 0, so the struct is filled.
        let st = unsafe { st.assume_init() };
        st.f_bavail * st.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for _ in 0..50 {
            if Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Runs a command that must succeed.
pub fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `n` real OOM kills of copies of dd named `comm` in `cgroup`; their pids.
pub fn kills(cgroup: &MemCgroup, victim: &Path, n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| {
            let (pid, status) = cgroup.run_hog(victim);
            assert_oom_killed(pid, status);
            pid
        })
        .collect()
}

/// Every row of `list --json` (all of them).
pub fn rows(db: &Path) -> Vec<Value> {
    let all = cli_json(&["list", "--json", "--limit", "1000000", "--db", db.to_str().unwrap()]);
    all.as_array().unwrap().clone()
}

/// The rows of the test's own kills: victims `pids`, killed since `since_ns`.
pub fn ours(rows: &[Value], pids: &[u32], since_ns: i64) -> Vec<Value> {
    rows.iter()
        .filter(|row| {
            let pid = row["pid"].as_i64();
            let time = row["time"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
            pids.iter().any(|p| Some(i64::from(*p)) == pid)
                && time.is_some_and(|t| t.as_nanosecond() as i64 >= since_ns - 1_000_000_000)
        })
        .cloned()
        .collect()
}

/// Waits until `done` holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `status --json` and its exit code.
pub fn status(db: &Path) -> (Option<i32>, Value) {
    let out = cli(&["status", "--json", "--db", db.to_str().unwrap()]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

/// A free TCP port on 127.0.0.1, for a daemon's metrics listener.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One sample of the daemon's Prometheus metrics (`GET /metrics`), by name
/// (without labels); `None` when absent or unreachable.
pub fn metric(port: u16, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The daemon's `recorded kill N: pid P (…)` lines: N → every P it was
/// said for (more than one would be an id said twice).
pub fn recorded_lines(log: &str) -> HashMap<i64, Vec<i64>> {
    let mut said: HashMap<i64, Vec<i64>> = HashMap::new();
    for line in log.lines() {
        let Some(rest) = line.split("recorded kill ").nth(1) else { continue };
        let Some((id, rest)) = rest.split_once(": pid ") else { continue };
        let pid = rest.split(' ').next().and_then(|p| p.parse().ok());
        if let (Ok(id), Some(pid)) = (id.parse(), pid) {
            said.entry(id).or_default().push(pid);
        }
    }
    said
}

/// Checks the daemon told no lie: every `recorded kill N: pid P` line names
/// a row N of victim P in the store, and no id was said twice.
pub fn no_lie_in_the_log(log: &str, rows: &[Value]) {
    let by_id: HashMap<i64, i64> =
        rows.iter().map(|r| (r["id"].as_i64().unwrap(), r["pid"].as_i64().unwrap())).collect();
    for (id, pids) in recorded_lines(log) {
        assert_eq!(pids.len(), 1, "kill {id} was said to be recorded {} times: {pids:?}", pids.len());
        assert_eq!(
            by_id.get(&id),
            Some(&pids[0]),
            "the log says kill {id} is pid {}; the store: {:?}",
            pids[0],
            by_id.get(&id)
        );
    }
}
