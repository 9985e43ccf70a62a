//! `oomrecorder watch`: each new record as it lands, until interrupted.
//!
//! It polls the database read-only rather than talking to the daemon: a
//! reader of a WAL database never blocks the writer, and `watch` works the
//! same against a copied file or a stopped daemon's history.

use std::{
    io::{self, Write},
    path::Path,
    time::Duration,
};

use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::{exit::Exit, format, list};
use crate::{
    model::Kill,
    store::{Access, Filter, Order, Store},
};

/// How often the store is asked for new rows: well under a person's notice,
/// and one indexed `id > ?` lookup costs microseconds.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// One JSON object per line (the rows of `list --json`) instead of table rows.
    #[arg(long)]
    pub json_lines: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("setting up the signal handlers: {0}")]
    Signals(io::Error),
}

pub fn run(db: &Path, args: &WatchArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db, Access::ReadOnly)?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(WatchError::Signals)?;
    runtime.block_on(watch(&store, args))
}

async fn watch(store: &Store, args: &WatchArgs) -> anyhow::Result<Exit> {
    let mut interrupt = signal(SignalKind::interrupt()).map_err(WatchError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(WatchError::Signals)?;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Only what lands from now on; `list` shows what came before.
    let mut last_seen = store.last_id()?;
    // A person sees the header at once, so they know it is watching.
    if !args.json_lines {
        emit(&[], false, true)?;
    }
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(Exit::Ok),
            _ = terminate.recv() => return Ok(Exit::Ok),
            _ = tick.tick() => {}
        }
        let filter = Filter { after_id: Some(last_seen), order: Order::Stored, ..Filter::default() };
        let kills = store.list(&filter)?;
        if kills.is_empty() {
            continue;
        }
        // Ids only grow (INTEGER PRIMARY KEY, never reused while larger ones
        // exist), so a record merged into later is not printed again.
        last_seen = kills.iter().filter_map(|k| k.id).max().unwrap_or(last_seen);
        emit(&kills, args.json_lines, false)?;
    }
}

/// Prints and flushes at once (a pipe would otherwise hold rows back).
/// `watch | head -1` ends at the error this returns: main makes a closed
/// pipe success.
fn emit(kills: &[Kill], json_lines: bool, header: bool) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    print(&mut out, kills, json_lines, header)
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::Error::new(e).context("writing to stdout"))
}

fn print(out: &mut dyn Write, kills: &[Kill], json_lines: bool, header: bool) -> io::Result<()> {
    if header {
        writeln!(out, "{}", row(None))?;
    }
    for kill in kills {
        if json_lines {
            list::json_line(out, kill)?;
        } else {
            writeln!(out, "{}", row(Some(kill)))?;
        }
    }
    Ok(())
}

/// One line per record in fixed columns (a table cannot be aligned before
/// its rows are known); `None` is the header.
fn row(kill: Option<&Kill>) -> String {
    let cells: [String; 7] = match kill {
        None => ["ID", "TIME", "PID", "COMM", "ANON RSS", "LIMIT", "WHERE"].map(str::to_owned),
        Some(k) => [
            format::opt(k.id),
            format::local_time(k.time_ns),
            k.victim.pid.to_string(),
            k.victim.comm.clone().unwrap_or_else(|| "-".into()),
            format::kb(k.victim.figures.anon_rss_kb),
            format::bytes_opt(k.memory_limit_bytes),
            // The most telling place: the pod, else the container, else the cgroup.
            list::pod_cell(k)
                .or_else(|| list::container_cell(k))
                .or_else(|| k.cgroup.clone())
                .unwrap_or_else(|| "-".into()),
        ],
    };
    let [id, time, pid, comm, rss, limit, place] = cells;
    format!("{id:>6}  {time:<28}  {pid:>8}  {comm:<16}  {rss:>10}  {limit:>10}  {place}")
}
