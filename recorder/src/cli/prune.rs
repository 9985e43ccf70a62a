//! `oomrecorder prune`: the daemon's retention, by hand. Opens the database
//! read-write (a second writer beside a running daemon waits on SQLite's
//! busy timeout, it does not fail) and says what it deleted.

use clap::Args;

use super::{exit::Exit, format};
use crate::{
    clock,
    config::{parse_max_age, Settings},
    pipeline::retention,
    store::{Access, Store},
};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete kills older than DAYS (180 or 180d); 0: none by age
    /// [default: `max_age_days` in the configuration file, else 180]
    #[arg(long, value_name = "DAYS", value_parser = parse_max_age)]
    pub max_age: Option<u32>,
    /// Keep at most N kills, deleting the oldest; 0: no cap
    /// [default: `max_records` in the configuration file, else 100000]
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,
    /// Say what would be deleted, and delete nothing (the database is only read).
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(settings: &Settings, args: &PruneArgs) -> anyhow::Result<Exit> {
    let now = clock::wall_ns_now();
    let (store, pruned) = if args.dry_run {
        let store = Store::open(&settings.db, Access::ReadOnly)?;
        let pruned = retention::would_prune(&store, now, settings.retention, settings.max_records)?;
        (store, pruned)
    } else {
        let mut store = Store::open_with(&settings.db, Access::ReadWrite, &super::sharing(settings)?)?;
        let pruned = retention::prune(&mut store, now, settings.retention, settings.max_records)?;
        (store, pruned)
    };
    let (deleted, left_now) = if args.dry_run { ("would delete", "would be") } else { ("deleted", "") };
    let age = match settings.retention {
        Some(keep) => format!("older than {} day(s)", keep.as_secs() / 86_400),
        None => "by age (no age limit)".to_owned(),
    };
    let cap = match settings.max_records {
        Some(n) => format!("beyond the newest {n}"),
        None => "beyond a cap (no record cap)".to_owned(),
    };
    let left = store.kill_count()? - if args.dry_run { pruned.by_age + pruned.by_count } else { 0 };
    format::to_stdout(|out| {
        writeln!(out, "{deleted} {} kill(s) {age}", pruned.by_age)?;
        writeln!(out, "{deleted} {} kill(s) {cap}", pruned.by_count)?;
        if args.dry_run {
            writeln!(
                out,
                "{left} kill(s) {left_now} left in {} (--dry-run: nothing was deleted)",
                settings.db.display()
            )
        } else {
            writeln!(out, "{left} kill(s) left in {}", settings.db.display())
        }
    })
}
