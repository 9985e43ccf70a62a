//! `oomrecorder import`: records from kernel logs people have.

use std::{
    collections::HashSet,
    fs::File,
    io::{self, BufReader},
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
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
    store::{Access, Store, StoreError},
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
    store.for_bulk_writes()?;
    let running = Running::read(&store)?;
    let mut found = import::Found::default();
    let mut this_boot = 0;
    let mut batch = Batch::default();
    for path in &args.files {
        let reading = || format!("reading {}", path.display());
        if path.as_os_str() == "-" {
            // Standard input cannot be read twice: held whole, placed, stored.
            let mut one = import::read_kills(io::stdin().lock()).with_context(reading)?;
            if let Some(running) = &running {
                this_boot += running.place(&mut one.kills);
            }
            for kill in std::mem::take(&mut one.kills) {
                batch.push(&mut store, kill)?;
            }
            found.add(one);
            continue;
        }
        // A file is read twice, never held: first what the running boot
        // logged (a few bytes a kill), then each kill stored in batches.
        let open = || -> anyhow::Result<BufReader<File>> {
            let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            refuse_endless(path, &file)?;
            Ok(BufReader::with_capacity(64 * 1024, file))
        };
        // The first pass is for a log the running boot may have written:
        // one stamp of the boot's witnesses is enough to need it.
        let witnessed_here = match &running {
            Some(running) => import::has_any_stamp(open()?, &running.stamps()).with_context(reading)?,
            None => false,
        };
        let placed = match &running {
            Some(running) if witnessed_here => {
                let mut keys = Vec::new();
                import::read_kills_into(open()?, &mut |kill| {
                    keys.push(import::BootKey::of(&kill, running.witnessed(&kill)));
                    Ok(())
                })
                .with_context(reading)?;
                import::this_boots(&keys, running.now_usec)
            }
            _ => Vec::new(),
        };
        // Parsed on a thread of its own while this one stores: the two take
        // a core each instead of taking turns at one. The channel holds two
        // chunks of CHUNK kills, so the parser runs at most that far ahead
        // of the store.
        let input = open()?;
        let boot_id = running.as_ref().map(|r| r.boot_id.clone());
        let (tx, rx) = mpsc::sync_channel::<Vec<Kill>>(2);
        let (one, stored) = thread::scope(|scope| {
            let parser = scope.spawn(move || {
                let (mut index, mut placed_here, mut chunk) = (0, 0, Vec::with_capacity(CHUNK));
                let found = import::read_kills_into(input, &mut |mut kill| {
                    if let (Some(boot_id), Some(true)) = (&boot_id, placed.get(index)) {
                        import::place(&mut kill, boot_id, &wall_ns);
                        placed_here += 1;
                    }
                    index += 1;
                    chunk.push(kill);
                    if chunk.len() >= CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        tx.send(full).map_err(|_| io::Error::other("the store stopped taking kills"))?;
                    }
                    Ok(())
                });
                if found.is_ok() && !chunk.is_empty() {
                    let _ = tx.send(chunk);
                }
                found.map(|found| (found, placed_here))
            });
            let stored = rx.iter().flatten().try_for_each(|kill| batch.push(&mut store, kill));
            // The store failed: dropping the receiver stops the parser at
            // its next batch, and the store's error is the one to tell.
            drop(rx);
            (parser.join(), stored)
        });
        stored?;
        let (one, placed_here) =
            one.map_err(|_| anyhow::anyhow!("the log parser panicked"))?.with_context(reading)?;
        this_boot += placed_here;
        found.add(one);
    }
    if let Some(dir) = &args.journal_dir {
        let mut journal = KernelJournal::open_dir(dir)?;
        journal.seek(None)?;
        let mut kills = Vec::new();
        journal.read_to_end(|kill| kills.push(kill))?;
        found.lines += journal.entries;
        for kill in kills {
            batch.push(&mut store, kill)?;
        }
    }
    batch.flush(&mut store)?;
    let (total, added) = (batch.total, batch.added);
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

/// Kills stored per transaction: one commit per kill would cost an fsync
/// each, one for the whole import would spill SQLite's page cache into
/// the WAL again and again.
const BATCH: usize = 4_096;

/// Kills the parser hands over at a time: small beside [`BATCH`], so the
/// two chunks in flight add little to the import's peak memory.
const CHUNK: usize = 256;

/// An import's kills on their way to the store, a transaction at a time.
#[derive(Default)]
struct Batch {
    kills: Vec<Kill>,
    total: usize,
    added: usize,
}

impl Batch {
    fn push(&mut self, store: &mut Store, kill: Kill) -> Result<(), StoreError> {
        self.kills.push(kill);
        self.total += 1;
        if self.kills.len() >= BATCH {
            self.flush(store)?;
        }
        Ok(())
    }

    /// Stores the kills held, in one transaction; a failure stores none of
    /// them (and the import stops: the kills before are stored, and a
    /// second import adds only the rest).
    fn flush(&mut self, store: &mut Store) -> Result<(), StoreError> {
        let kills = std::mem::take(&mut self.kills);
        let added = store.in_transaction(|store| {
            let mut added = 0;
            for kill in &kills {
                if let Recorded::Inserted(_) = join::record(store, kill)? {
                    added += 1;
                }
            }
            Ok(added)
        })?;
        self.added += added;
        Ok(())
    }
}

/// Wall-clock ns of a stamp of the running boot's log clock.
fn wall_ns(usec: u64) -> i64 {
    clock::mono_to_wall_ns(usec.saturating_mul(1_000))
}

/// The running boot, for telling that a raw `dmesg` is its own: its id,
/// its clock, and the kill lines its kernel log still holds.
struct Running {
    boot_id: String,
    now_usec: u64,
    kill_lines: HashSet<(u64, String)>,
    /// (pid, stamp) of the daemon's records of this boot.
    recorded: HashSet<(i32, u64)>,
}

impl Running {
    /// `None` when the boot id cannot be read (the kills then stay of no
    /// boot, as before).
    fn read(store: &Store) -> Result<Option<Running>, StoreError> {
        let Some(boot_id) = clock::read_boot_id(Path::new("/proc")).map_err(|e| log::debug!("{e}")).ok()
        else {
            return Ok(None);
        };
        // Reading the kernel log needs CAP_SYSLOG where dmesg_restrict=1;
        // without it the daemon's records are the only witness.
        let kill_lines = Kmsg::open(Path::new(KMSG))
            .and_then(|mut kmsg| import::kill_lines(&mut kmsg))
            .map_err(|e| log::debug!("{KMSG}: {e}; the store's records are the only witness"))
            .unwrap_or_default();
        let recorded = store.kmsg_stamps(&boot_id)?;
        Ok(Some(Running { boot_id, now_usec: clock::mono_ns_now() / 1_000, kill_lines, recorded }))
    }

    /// Whether this boot logged `kill`: its line is in the kernel's log, or
    /// the daemon recorded the same pid with the same log stamp.
    fn witnessed(&self, kill: &Kill) -> bool {
        let Some(usec) = kill.kmsg_usec else { return false };
        if kill.boot_id.is_some() {
            return false;
        }
        let line = kill.kernel_report.last().cloned().unwrap_or_default();
        self.kill_lines.contains(&(usec, line)) || self.recorded.contains(&(kill.victim.pid, usec))
    }

    /// Every stamp a witnessed kill can have ([`Running::witnessed`]).
    fn stamps(&self) -> HashSet<u64> {
        self.kill_lines
            .iter()
            .map(|(usec, _)| *usec)
            .chain(self.recorded.iter().map(|(_, usec)| *usec))
            .collect()
    }

    /// Places the running boot's kills of one log; returns how many.
    fn place(&self, kills: &mut [Kill]) -> usize {
        let running = import::RunningBoot {
            boot_id: &self.boot_id,
            now_usec: self.now_usec,
            witnessed: &|kill| self.witnessed(kill),
            wall_ns: &wall_ns,
        };
        import::place_on_boot(kills, &running)
    }
}
