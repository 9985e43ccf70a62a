//! `oomrecorder import`: records from kernel logs people have.

use std::{
    fs::File,
    io::{self, BufReader},
    path::PathBuf,
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
            import::read_kills(BufReader::new(file))
        }
        .with_context(|| format!("reading {}", path.display()))?;
        found.lines += one.lines;
        found.kills.extend(one.kills);
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
        )
    })
}
