//! Takes the victim's cgroup snapshot off the ring-buffer reader's path: the
//! reader hands each event to this thread (a channel send, never a wait) and
//! goes on reading; the snapshot starts as soon as the thread has it, well
//! within a millisecond when it is idle, and reaches the writer as facts that
//! merge into the event's record (same boot, boot clock and pid).

use std::{
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
};

use super::{counters::Counters, writer::ToWriter};
use crate::{
    clock,
    kernel::memcg::Hierarchy,
    model::{cmdline::CmdlinePolicy, identity, run::Counter, Kill, Source, Victim},
    sources::cgroup::{files, runtimes},
};

/// One victim to snapshot.
pub struct Request {
    pub pid: i32,
    pub boot_id: String,
    /// The eBPF event's boot clock: identifies the record, and dates the
    /// snapshot relative to the kill.
    pub boot_ns: u64,
    /// The victim's memory cgroup path from the eBPF event, when the kernel
    /// gave it; else /proc/<pid>/cgroup is read (the victim may be gone).
    pub cgroup_path: Option<String>,
}

pub struct Snapshotter {
    hierarchy: Option<Hierarchy>,
    proc_root: PathBuf,
    /// Names the victim from the runtimes' files, at the kill: several go
    /// with the container (a CRI bundle within a second of PID 1's death).
    runtimes: runtimes::Runtimes,
    misses: Option<std::sync::Arc<Counters>>,
    /// What the record keeps of command lines, applied as they are read.
    cmdline: CmdlinePolicy,
}

impl Snapshotter {
    pub fn new(hierarchy: Option<Hierarchy>, proc_root: &Path, node_root: &Path) -> Snapshotter {
        Snapshotter {
            hierarchy,
            proc_root: proc_root.to_path_buf(),
            runtimes: runtimes::Runtimes::new(node_root),
            misses: None,
            cmdline: CmdlinePolicy::Full,
        }
    }

    /// Keeps of each command line only what `policy` allows (the
    /// configuration's `cmdline`): nothing else ever sees it.
    pub fn keeping_cmdlines(mut self, policy: CmdlinePolicy) -> Snapshotter {
        self.cmdline = policy;
        self
    }

    /// Counts each snapshot that could not read the victim's cgroup.
    pub fn counting_misses_in(mut self, counters: std::sync::Arc<Counters>) -> Snapshotter {
        self.misses = Some(counters);
        self
    }

    /// Starts the thread; it ends when every request sender is dropped.
    pub fn spawn(
        mut self,
        tx: mpsc::Sender<ToWriter>,
    ) -> std::io::Result<(mpsc::Sender<Request>, thread::JoinHandle<()>)> {
        let (requests, rx) = mpsc::channel::<Request>();
        let handle = thread::Builder::new().name("cgroup-snapshot".into()).spawn(move || {
            for request in rx {
                let facts = self.take(&request);
                // A hierarchy to read but no memory.stat: the cgroup was gone
                // (or unreadable) before the snapshot got to it.
                let missed = self.hierarchy.is_some()
                    && facts.snapshot.as_ref().is_none_or(|s| s.memory_stat.is_none());
                if let (true, Some(counters)) = (missed, self.misses.as_ref()) {
                    counters.add(Counter::SnapshotsMissed, 1);
                }
                if tx.send(ToWriter::Annotate(Box::new(facts))).is_err() {
                    return;
                }
            }
        })?;
        Ok((requests, handle))
    }

    /// The facts of one snapshot, as a partial record of the same kill.
    pub fn take(&mut self, request: &Request) -> Kill {
        let started_boot_ns = clock::boot_ns_now();
        let proc_dir = self.proc_root.join(request.pid.to_string());
        // Best effort: a victim already reaped has no /proc entry.
        let cmdline = files::process_keeping(&self.proc_root, request.pid, self.cmdline).cmdline;
        let exe = std::fs::read_link(proc_dir.join("exe")).ok().map(|p| p.to_string_lossy().into_owned());
        let snapshot = self.hierarchy.as_ref().and_then(|h| {
            let path = request.cgroup_path.clone().or_else(|| {
                let text = std::fs::read_to_string(proc_dir.join("cgroup")).ok()?;
                files::path_from_proc_cgroup(&text, h.version)
            })?;
            let mut s = files::snapshot_keeping(h, &path, &self.proc_root, self.cmdline);
            s.delay_us = Some(started_boot_ns.saturating_sub(request.boot_ns) / 1_000);
            Some(s)
        });
        let container = snapshot.as_ref().and_then(|s| s.path.as_deref()).map(|path| {
            let mut id = identity::from_path(path);
            self.runtimes.enrich(&mut id, path);
            id
        });
        let mut sources = Vec::new();
        if snapshot.is_some() {
            sources.push(Source::Cgroup);
        }
        Kill {
            boot_id: Some(request.boot_id.clone()),
            boot_ns: Some(request.boot_ns),
            recorded_ns: clock::wall_ns_now(),
            sources,
            victim: Victim { pid: request.pid, cmdline, exe, ..Victim::default() },
            cgroup: snapshot.as_ref().and_then(|s| s.path.clone()),
            memory_limit_bytes: snapshot.as_ref().and_then(|s| s.memory_limit_bytes),
            container,
            snapshot,
            ..Kill::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::memcg::MemcgVersion;

    /// A fake /proc with one victim in a v2 cgroup whose other process
    /// carries a token on its command line.
    fn machine(dir: &Path) -> (Hierarchy, PathBuf) {
        let proc_root = dir.join("proc");
        for (pid, argv) in
            [(10, &b"app\0--password\0hunter2\0--port\080\0"[..]), (11, b"sidecar\0TOKEN=abc\0")]
        {
            std::fs::create_dir_all(proc_root.join(pid.to_string())).unwrap();
            std::fs::write(proc_root.join(format!("{pid}/cmdline")), argv).unwrap();
        }
        let cgroup = dir.join("cgroup/job");
        std::fs::create_dir_all(&cgroup).unwrap();
        std::fs::write(cgroup.join("cgroup.procs"), "10\n11\n").unwrap();
        std::fs::write(cgroup.join("memory.stat"), "anon 1\n").unwrap();
        (Hierarchy { version: MemcgVersion::V2, root: dir.join("cgroup") }, proc_root)
    }

    fn cmdlines(policy: CmdlinePolicy) -> (Option<String>, Vec<Option<String>>) {
        let dir = tempfile::tempdir().unwrap();
        let (hierarchy, proc_root) = machine(dir.path());
        let request = Request { pid: 10, boot_id: "b".into(), boot_ns: 0, cgroup_path: Some("/job".into()) };
        let kill =
            Snapshotter::new(Some(hierarchy), &proc_root, dir.path()).keeping_cmdlines(policy).take(&request);
        let processes = kill.snapshot.map(|s| s.processes.into_iter().map(|p| p.cmdline).collect());
        (kill.victim.cmdline, processes.unwrap_or_default())
    }

    #[test]
    fn command_lines_are_kept_as_the_configuration_says_when_they_are_read() {
        assert_eq!(
            cmdlines(CmdlinePolicy::Full),
            (
                Some("app --password hunter2 --port 80".into()),
                vec![Some("app --password hunter2 --port 80".into()), Some("sidecar TOKEN=abc".into())]
            )
        );
        assert_eq!(
            cmdlines(CmdlinePolicy::Redacted),
            (
                Some("app --password <redacted> --port 80".into()),
                vec![
                    Some("app --password <redacted> --port 80".into()),
                    Some("sidecar TOKEN=<redacted>".into())
                ]
            )
        );
        assert_eq!(cmdlines(CmdlinePolicy::None), (None, vec![None, None]));
    }
}
