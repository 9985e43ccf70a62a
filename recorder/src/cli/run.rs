//! `oomrecorder run`.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;

use super::exit::Exit;
use crate::{
    config::{parse_max_age, Settings},
    pipeline::daemon::{self, DaemonConfig, MetricsConfig},
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
    /// Serve Prometheus metrics on ADDR (`127.0.0.1:9977`; `[::]:9977` for
    /// every address) [default: `metrics_listen` in the configuration file,
    /// else off]
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Write the metrics to PATH for node_exporter's textfile collector
    /// (its directory, a name ending in .prom), after each kill and every
    /// minute [default: `metrics_textfile` in the configuration file, else off]
    #[arg(long, value_name = "PATH")]
    pub metrics_textfile: Option<PathBuf>,
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
        metrics: MetricsConfig {
            listen: args.metrics_listen.or(settings.metrics.listen),
            textfile: args.metrics_textfile.clone().or_else(|| settings.metrics.textfile.clone()),
            comm_label: settings.metrics.comm_label,
        },
        journal_entries: settings.journal_entries,
    })?;
    Ok(Exit::Ok)
}
