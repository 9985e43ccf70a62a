//! `oomrecorder run`.

use clap::Args;

use crate::{
    config::Settings,
    daemon::{self, DaemonConfig},
    exit::Exit,
};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Delete kills older than N days, at start and daily; 0 keeps everything
    /// [default: `retention_days` in the configuration file, else 0]
    #[arg(long, value_name = "N")]
    pub retention_days: Option<u32>,
    /// Attach the oom:mark_victim tracepoint program even where the raw
    /// tracepoint is usable (tests keep the fallback path exercised).
    #[arg(long, hide = true)]
    pub force_tracepoint: bool,
}

pub fn run(settings: &Settings, args: &RunArgs) -> anyhow::Result<Exit> {
    daemon::run(&DaemonConfig {
        db: settings.db.clone(),
        retention: settings.retention,
        force_tracepoint: args.force_tracepoint,
    })?;
    Ok(Exit::Ok)
}
