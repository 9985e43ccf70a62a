//! `oomrecorder import`: records from kernel logs people have.

use std::{
    collections::HashSet,
    fs::File,
    io::{self, BufReader},
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::Args;

use super::{exit::Exit, format};
use crate::{
    clock,
    config::Settings,
    model::Kill,
    pipeline::join::{self, Recorded},
    sources::{import, journal::KernelJournal, kmsg::Kmsg},
    store::{Access, Store},
};

/// The kernel's log device (Documentation/ABI/testing/dev-kmsg).
const KMSG: &str = "/dev/kmsg";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Kernel logs: dmesg (with or without -T), journalctl -k or syslog
    /// output, /dev/kmsg dumps, or pasted fragments; `-` reads stdin.
    #[arg(value_name = "FILE", required_unless_present = "journal_dir")]
    pub files: Vec<PathBuf>,
    /// Also read the kernel entries of the journal files in DIR (a copy of
    /// another machine's /var/log/journal, or `journalctl --directory` input).
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
}

pub fn run(settings: &Settings, args: &ImportArgs) -> anyhow::Result<Exit> {
    let mut store = Store::open_with(&settings.db, Access::ReadWrite, &super::sharing(settings)?)?;
    let running = Running::read();
    let mut found = import::Found::default();
    let mut this_boot = 0;
    for path in &args.files {
        let mut one = if path.as_os_str() == "-" {
            import::read_kills(io::stdin().lock())
        } else {
            let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            refuse_endless(path, &file)?;
            import::read_kills(BufReader::with_capacity(64 * 1024, file))
        }
        .with_context(|| format!("reading {}", path.display()))?;
        if let Some(running) = &running {
            this_boot += running.place(&store, &mut one.kills)?;
        }
        found.add(one);
    }
    if let Some(dir) = &args.journal_dir {
        let mut journal = KernelJournal::open_dir(dir)?;
        journal.seek(None)?;
        journal.read_to_end(|kill| found.kills.push(kill))?;
        found.lines += journal.entries;
    }
    let mut added = 0;
    store.in_transaction(|store| {
        for kill in &found.kills {
            if let Recorded::Inserted(_) = join::record(store, kill)? {
                added += 1;
            }
        }
        Ok(())
    })?;
    let total = found.kills.len();
    format::to_stdout(|out| {
        write!(
            out,
            "{} lines read: {total} kills found, {added} added, {} already recorded",
            found.lines,
            total - added
        )?;
        if this_boot > 0 {
            write!(out, "; {this_boot} logged by the running boot (its boot id and times given them)")?;
        }
        writeln!(out)?;
        let passed_over = [
            (found.long_lines, format!("line(s) longer than the kernel's {} KiB", import::MAX_LINE / 1024)),
            (found.foreign_records, "/dev/kmsg record(s) that programs, not the kernel, wrote".to_owned()),
            (found.impossible_kills, "kill line(s) naming a pid no kernel gives".to_owned()),
        ];
        for (n, what) in passed_over.iter().filter(|(n, _)| *n > 0) {
            writeln!(out, "passed over: {n} {what}")?;
        }
        if found.figures_refused > 0 {
            writeln!(
                out,
                "not stored: {} figure(s) no kernel can have printed (unknown in the records; \
                 `show ID --json` has a note for each)",
                found.figures_refused
            )?;
        }
        Ok(())
    })
}

/// A device, or a file of /proc or /sys, is never a saved log: `/dev/zero`
/// never ends, `/dev/kmsg` and `/proc/kmsg` wait for the next message (and
/// reading /proc/kmsg takes messages from syslog). Refused before reading.
fn refuse_endless(path: &Path, file: &File) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let kind = file.metadata().with_context(|| format!("cannot read {}", path.display()))?.file_type();
    if kind.is_char_device() || kind.is_block_device() {
        anyhow::bail!(
            "{} is a device, not a saved kernel log: save the log first (`dmesg > kern.log`, \
             `journalctl -k > kern.log`) and import that file",
            path.display()
        );
    }
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs fills one `struct statfs` for an open file descriptor
    // that `file` owns for the duration of the call.
    let rc = unsafe { libc::fstatfs(std::os::fd::AsRawFd::as_raw_fd(file), fs.as_mut_ptr()) };
    if rc == 0 {
        // SAFETY: fstatfs returned 0: the struct is filled.
        let magic = unsafe { fs.assume_init() }.f_type;
        if magic == libc::PROC_SUPER_MAGIC || magic == libc::SYSFS_MAGIC {
            anyhow::bail!(
                "{} is a kernel interface, not a saved log (it may never end): save the log first \
                 (`dmesg > kern.log`) and import that file",
                path.display()
            );
        }
    }
    Ok(())
}

/// The running boot, for telling that a raw `dmesg` is its own: its id,
/// its clock, and the kill lines its kernel log still holds.
struct Running {
    boot_id: String,
    now_usec: u64,
    kill_lines: HashSet<(u64, String)>,
}

impl Running {
    /// `None` when the boot id cannot be read (the kills then stay of no
    /// boot, as before).
    fn read() -> Option<Running> {
        let boot_id = clock::read_boot_id(Path::new("/proc")).map_err(|e| log::debug!("{e}")).ok()?;
        // Reading the kernel log needs CAP_SYSLOG where dmesg_restrict=1;
        // without it the daemon's records are the only witness.
        let kill_lines = Kmsg::open(Path::new(KMSG))
            .and_then(|mut kmsg| import::kill_lines(&mut kmsg))
            .map_err(|e| log::debug!("{KMSG}: {e}; the store's records are the only witness"))
            .unwrap_or_default();
        Some(Running { boot_id, now_usec: clock::mono_ns_now() / 1_000, kill_lines })
    }

    /// Places the running boot's kills of one log; returns how many.
    fn place(&self, store: &Store, kills: &mut [Kill]) -> anyhow::Result<usize> {
        // A kill this boot logged: its line is in the kernel's log, or the
        // daemon recorded the same pid with the same log stamp.
        let mut recorded = HashSet::new();
        for kill in kills.iter().filter(|k| k.boot_id.is_none()) {
            let stored = store.candidates(&self.boot_id, kill.victim.pid)?;
            recorded.extend(stored.iter().filter_map(|s| Some((s.pid, s.kmsg_usec?))));
        }
        let witnessed = |kill: &Kill| {
            let Some(usec) = kill.kmsg_usec else { return false };
            let line = kill.kernel_report.last().cloned().unwrap_or_default();
            self.kill_lines.contains(&(usec, line)) || recorded.contains(&(kill.victim.pid, usec))
        };
        let wall_ns = |usec: u64| clock::mono_to_wall_ns(usec.saturating_mul(1_000));
        let running = import::RunningBoot {
            boot_id: &self.boot_id,
            now_usec: self.now_usec,
            witnessed: &witnessed,
            wall_ns: &wall_ns,
        };
        Ok(import::place_on_boot(kills, &running))
    }
}
