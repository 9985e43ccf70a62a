//! `oomrecorder import`: records from kernel logs people have.

use std::{
    fs::File,
    io::{self, BufReader},
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::Args;

use super::{exit::Exit, format};
use crate::{
    config::Settings,
    pipeline::join::{self, Recorded},
    sources::{import, journal::KernelJournal},
    store::{Access, Store},
};

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
    let mut found = import::Found::default();
    for path in &args.files {
        let one = if path.as_os_str() == "-" {
            import::read_kills(io::stdin().lock())
        } else {
            let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            refuse_endless(path, &file)?;
            import::read_kills(BufReader::with_capacity(64 * 1024, file))
        }
        .with_context(|| format!("reading {}", path.display()))?;
        found.add(one);
    }
    if let Some(dir) = &args.journal_dir {
        let mut journal = KernelJournal::open_dir(dir)?;
        journal.seek(None)?;
        journal.read_to_end(|kill| found.kills.push(kill))?;
        found.lines += journal.entries;
    }
    let mut store = Store::open_with(&settings.db, Access::ReadWrite, &super::sharing(settings)?)?;
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
        writeln!(
            out,
            "{} lines read: {total} kills found, {added} added, {} already recorded",
            found.lines,
            total - added
        )?;
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
