//! `oomrecorder list`: recorded kills, newest first.

use std::path::Path;

use clap::Args;
use tabled::{builder::Builder, settings::Style};

use super::{format, json};
use crate::{
    exit::Exit,
    kill::Kill,
    store::{Access, Filter, Store},
};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show at most N kills.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub limit: u32,
    /// One JSON array for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(db: &Path, args: &ListArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db, Access::ReadOnly)?;
    let kills = store.list(&Filter { limit: Some(args.limit) })?;
    format::to_stdout(|out| {
        if args.json {
            let rows: Vec<_> = kills.iter().map(json::kill_summary).collect();
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)
        } else if kills.is_empty() {
            writeln!(out, "No OOM kills recorded in {}.", db.display())
        } else {
            writeln!(out, "{}", table(&kills))
        }
    })
}

fn table(kills: &[Kill]) -> String {
    let mut builder = Builder::new();
    builder.push_record(["ID", "TIME", "PID", "COMM", "CGROUP", "ANON RSS", "LIMIT"]);
    for kill in kills {
        builder.push_record([
            format::opt(kill.id),
            format::local_time(kill.time_ns),
            kill.victim.pid.to_string(),
            kill.victim.comm.clone().unwrap_or_else(|| "-".into()),
            kill.cgroup.clone().unwrap_or_else(|| "-".into()),
            format::kb(kill.victim.anon_rss_kb),
            format::bytes_opt(kill.memory_limit_bytes),
        ]);
    }
    builder.build().with(Style::blank()).to_string()
}
