//! `oomrecorder watch`: each new record as it lands, until interrupted.
//!
//! It polls the database read-only rather than talking to the daemon: a
//! reader of a WAL database never blocks the writer, and `watch` works the
//! same against a copied file or a stopped daemon's history.

use std::{
    io::{self, Write},
    ops::ControlFlow,
    path::Path,
    time::Duration,
};

use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::{
    exit::Exit,
    filter::FilterArgs,
    format, list,
    table::{self, Column, Row, Table, BASE},
};
use crate::{
    model::Kill,
    store::{Access, Filter, Order, Rows, Store, StoreError},
};

/// How often the store is asked for new rows: well under a person's notice,
/// and one indexed `id > ?` lookup costs microseconds.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only new kills these select (the filters of `list`).
    #[command(flatten)]
    pub filter: FilterArgs,
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

/// The columns of `list`'s table `watch` prints: the base ones, and
/// CONTAINER, POD and IMAGE when the store has ever named one (a host
/// without containers keeps its narrow table), or a new kill does.
#[derive(Debug)]
struct Columns {
    wanted: Vec<Column>,
    table: Table,
}

impl Columns {
    fn new(seen: Seen, width: Option<usize>) -> Columns {
        let mut columns = Columns { wanted: BASE.to_vec(), table: Table::fixed(&BASE, width) };
        columns.want(seen, width);
        columns
    }

    /// Adds what `seen` names that the table lacks; true when it changed.
    fn want(&mut self, seen: Seen, width: Option<usize>) -> bool {
        let before = self.wanted.len();
        for (column, named) in
            [(Column::Container, seen.container), (Column::Pod, seen.pod), (Column::Image, seen.image)]
        {
            if named && !self.wanted.contains(&column) {
                self.wanted.push(column);
            }
        }
        if self.wanted.len() == before {
            return false;
        }
        // Keep list's order: CONTAINER, POD, IMAGE after the base columns.
        self.wanted
            .sort_by_key(|c| [Column::Container, Column::Pod, Column::Image].iter().position(|x| x == c));
        self.table = Table::fixed(&self.wanted, width);
        true
    }
}

async fn watch(store: &Store, args: &WatchArgs) -> anyhow::Result<Exit> {
    let mut interrupt = signal(SignalKind::interrupt()).map_err(WatchError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(WatchError::Signals)?;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let selected = args.filter.filter(store)?;
    // Only what lands from now on; `list` shows what came before.
    let mut last_seen = store.last_id()?;
    let width = format::stdout_width();
    let (container, pod, image) = store.identities_seen()?;
    let mut columns = Columns::new(Seen { container, pod, image }, width);
    // A person sees the header at once, so they know it is watching.
    if !args.json_lines {
        emit(|out| writeln!(out, "{}", columns.table.header()))?;
    }
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(Exit::Ok),
            _ = terminate.recv() => return Ok(Exit::Ok),
            _ = tick.tick() => {}
        }
        let filter =
            Filter { after_id: Some(last_seen), order: Order::Stored, limit: None, ..selected.clone() };
        let mut kills = Vec::new();
        let newest = store.last_id()?;
        store.for_each(&filter, Rows::Summary, |kill| {
            kills.push(kill);
            Ok::<_, StoreError>(ControlFlow::Continue(()))
        })?;
        // Ids only grow (INTEGER PRIMARY KEY, never reused while larger ones
        // exist), so a record merged into later is not printed again; one
        // the filters pass over is not looked at again either.
        last_seen = kills.iter().filter_map(|k| k.id).max().unwrap_or(last_seen).max(newest);
        emit(|out| {
            for kill in &kills {
                if args.json_lines {
                    list::json_line(out, kill)?;
                    continue;
                }
                // A kill naming what no column shows yet: the table grows,
                // under a new header (as vmstat repeats its own).
                if columns.want(Seen::of(kill), width) {
                    writeln!(out, "{}", columns.table.header())?;
                }
                writeln!(out, "{}", columns.table.row(&Row { kill, victims: None }))?;
            }
            Ok(())
        })?;
    }
}

/// Which identity columns a kill (or the store) would fill.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    container: bool,
    pod: bool,
    image: bool,
}

impl Seen {
    fn of(kill: &Kill) -> Seen {
        Seen {
            container: table::container_cell(kill).is_some(),
            pod: table::pod_cell(kill).is_some(),
            image: table::image_cell(kill).is_some(),
        }
    }
}

/// Prints and flushes at once (a pipe would otherwise hold rows back).
/// `watch | head -1` ends at the error this returns: main makes a closed
/// pipe success.
fn emit(print: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    print(&mut out).and_then(|()| out.flush()).map_err(|e| anyhow::Error::new(e).context("writing to stdout"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{identity::Identity, Victim};

    #[test]
    fn a_kill_naming_a_container_grows_the_table_once() {
        let mut columns = Columns::new(Seen::default(), None);
        assert_eq!(columns.table.columns(), BASE.as_slice());
        let kill = Kill {
            victim: Victim { pid: 1, ..Victim::default() },
            container: Some(Identity {
                container_name: Some("web".into()),
                image: Some("nginx".into()),
                ..Identity::default()
            }),
            ..Kill::default()
        };
        assert!(columns.want(Seen::of(&kill), None));
        assert!(!columns.want(Seen::of(&kill), None), "already shown");
        assert_eq!(&columns.table.columns()[BASE.len()..], [Column::Container, Column::Image]);
        let row = columns.table.row(&Row { kill: &kill, victims: None });
        assert!(row.contains(" web ") && row.ends_with(" nginx"), "{row:?}");
    }
}
