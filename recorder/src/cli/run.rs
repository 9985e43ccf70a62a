//! `oomrecorder run`.

use clap::Args;

use super::exit::Exit;
use crate::{
    config::{parse_max_age, Settings},
    pipeline::daemon::{self, DaemonConfig},
};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Delete kills older than DAYS (180 or 180d), at start and daily; 0 keeps
    /// them whatever their age [default: `max_age_days` in the configuration
    /// file, else 180]
    #[arg(long, alias = "retention-days", value_name = "DAYS", value_parser = parse_max_age)]
    pub max_age: Option<u32>,
    /// Keep at most N kills, deleting the oldest; 0: no cap
    /// [default: `max_records` in the configuration file, else 100000]
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,
    /// Attach the oom:mark_victim tracepoint program even where the raw
    /// tracepoint is usable (tests keep the fallback path exercised).
    #[arg(long, hide = true)]
    pub force_tracepoint: bool,
}

pub fn run(settings: &Settings, args: &RunArgs) -> anyhow::Result<Exit> {
    daemon::run(&DaemonConfig {
        db: settings.db.clone(),
        retention: settings.retention,
        max_records: settings.max_records,
        force_tracepoint: args.force_tracepoint,
    })?;
    Ok(Exit::Ok)
}
