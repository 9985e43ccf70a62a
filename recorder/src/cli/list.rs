//! `oomrecorder list`: recorded kills, newest first, narrowed by the
//! selection flags.

use std::{io::Write, ops::ControlFlow, path::Path};

use super::{
    exit::Exit,
    filter::FilterArgs,
    format,
    table::{Column, Row, Table},
};
use crate::{
    model::{
        incident::{Collapser, Incident},
        json, Kill,
    },
    store::{Access, Filter, Order, Rows, Store, StoreError},
};
use clap::Args;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Show at most N kills; 0: all of them (as `max_records = 0` is no cap).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub limit: u32,
    /// Oldest first (the exact reverse of the default order).
    #[arg(long)]
    pub reverse: bool,
    /// One line per incident: the victims of a memory.oom.group kill as one
    /// line, named by the first, with their count (--limit counts incidents).
    #[arg(long)]
    pub incidents: bool,
    /// One JSON array for scripts instead of a table.
    #[arg(long, conflicts_with = "json_lines")]
    pub json: bool,
    /// One JSON object per line (the rows of --json), for streaming to jq and log shippers.
    #[arg(long)]
    pub json_lines: bool,
}

pub fn run(db: &Path, args: &ListArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db, Access::ReadOnly)?;
    let mut filter = args.filter.filter(&store)?;
    filter.limit = (args.limit > 0).then_some(args.limit);
    filter.order = if args.reverse { Order::OldestFirst } else { Order::NewestFirst };
    if args.incidents {
        return incidents(db, &store, &filter, args);
    }
    if args.json || args.json_lines {
        // Each row is written as SQLite steps to it: scripts read every kill
        // of a large store (`--limit 0`) in constant memory.
        return format::stream_to_stdout(|out| {
            let continue_ = || Ok::<_, anyhow::Error>(ControlFlow::Continue(()));
            if args.json {
                let mut array = format::JsonArray::new(out);
                store.for_each(&filter, Rows::Summary, |kill| {
                    array.push(&json::kill_summary(&kill))?;
                    continue_()
                })?;
                array.finish()?;
            } else {
                store.for_each(&filter, Rows::Summary, |kill| {
                    json_line(out, &kill)?;
                    continue_()
                })?;
            }
            Ok(())
        });
    }
    let mut kills = Vec::new();
    store.for_each(&filter, Rows::Summary, |kill| {
        kills.push(kill);
        Ok::<_, StoreError>(ControlFlow::Continue(()))
    })?;
    format::to_stdout(|out| {
        if kills.is_empty() {
            writeln!(out, "No OOM kills {} in {}.", nothing(&filter), db.display())
        } else {
            writeln!(out, "{}", table(&kills, format::stdout_width()))
        }
    })
}

/// `list --incidents`: kills read in order and collapsed into incidents as
/// each is whole (model::incident::Collapser), up to `--limit` of them;
/// JSON is written as each incident is, the table once all are known.
fn incidents(db: &Path, store: &Store, filter: &Filter, args: &ListArgs) -> anyhow::Result<Exit> {
    let all = Filter { limit: None, ..filter.clone() };
    let mut left = filter.limit.map_or(usize::MAX, |n| n as usize);
    format::stream_to_stdout(|out| {
        let mut sink = if args.json {
            Sink::Array(format::JsonArray::new(&mut *out))
        } else if args.json_lines {
            Sink::Lines(&mut *out)
        } else {
            Sink::Table(Vec::new())
        };
        let mut take = |incidents: Vec<Incident>, sink: &mut Sink| -> anyhow::Result<ControlFlow<()>> {
            for incident in incidents {
                if left == 0 {
                    break;
                }
                left -= 1;
                sink.put(incident)?;
            }
            Ok(if left == 0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        };
        let mut collapser = Collapser::default();
        store.for_each(&all, Rows::Summary, |kill| take(collapser.push(kill), &mut sink))?;
        // Whatever the last pause left open is whole now.
        let _ = take(collapser.finish(), &mut sink)?;
        let done = match sink {
            Sink::Array(array) => return Ok(array.finish()?),
            Sink::Lines(_) => return Ok(()),
            Sink::Table(done) => done,
        };
        if done.is_empty() {
            writeln!(out, "No OOM kills {} in {}.", nothing(filter), db.display())?;
            return Ok(());
        }
        let rows: Vec<Row> =
            done.iter().map(|i| Row { kill: i.first(), victims: Some(i.kills().len()) }).collect();
        let table = Table::fit(&rows, &[Column::Victims], format::stdout_width());
        writeln!(out, "{}", table.header())?;
        rows.iter().try_for_each(|row| writeln!(out, "{}", table.row(row)))?;
        Ok(())
    })
}

/// Where `list --incidents` puts each incident as it is whole.
enum Sink<'a> {
    Array(format::JsonArray<'a>),
    Lines(&'a mut dyn Write),
    /// The table is laid out once every row is known.
    Table(Vec<Incident>),
}

impl Sink<'_> {
    fn put(&mut self, incident: Incident) -> std::io::Result<()> {
        match self {
            Sink::Array(array) => array.push(&json::incident_summary(&incident)),
            Sink::Lines(out) => {
                serde_json::to_writer(&mut **out, &json::incident_summary(&incident))?;
                writeln!(out)
            }
            Sink::Table(done) => {
                done.push(incident);
                Ok(())
            }
        }
    }
}

/// What an empty listing says: nothing recorded, or nothing selected.
fn nothing(filter: &Filter) -> &'static str {
    let narrowed = filter != &Filter { limit: filter.limit, order: filter.order, ..Filter::default() };
    if narrowed {
        "match these filters"
    } else {
        "recorded"
    }
}

/// One `--json-lines` row: the `--json` row on one line.
pub fn json_line(out: &mut dyn Write, kill: &Kill) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &json::kill_summary(kill))?;
    writeln!(out)
}

/// The table, cut to `width` columns when given (see [`table::Table`]).
/// CONTAINER and POD appear only when a shown row has one, so a host
/// without containers keeps its narrow table; IMAGE where there is room.
pub fn table(kills: &[Kill], width: Option<usize>) -> String {
    let rows: Vec<Row> = kills.iter().map(|kill| Row { kill, victims: None }).collect();
    let table = Table::fit(&rows, &[], width);
    let mut text = table.header();
    for row in &rows {
        text.push('\n');
        text.push_str(&table.row(row));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{identity::Identity, Victim};

    fn kill(cgroup: &str, container: Option<Identity>) -> Kill {
        Kill {
            id: Some(7),
            time_ns: Some(1_764_059_401_000_000_000),
            victim: Victim { pid: 42, comm: Some("hog".into()), ..Victim::default() },
            cgroup: Some(cgroup.into()),
            container,
            ..Kill::default()
        }
    }

    #[test]
    fn a_terminal_cuts_the_widest_column_and_a_pipe_cuts_nothing() {
        let long = format!("/kubepods.slice/{}", "x".repeat(200));
        let kills = [kill(&long, None)];
        let cut = table(&kills, Some(100));
        assert!(cut.lines().all(|l| l.chars().count() <= 100), "{cut}");
        assert!(cut.contains("hog") && cut.contains('…'), "{cut}");
        let whole = table(&kills, None);
        assert!(whole.contains(&long));
    }

    #[test]
    fn container_and_pod_columns_only_when_a_row_has_them() {
        assert!(!table(&[kill("/a", None)], None).contains("CONTAINER"));
        let identity = Identity {
            id: Some("0123456789abcdef".repeat(4)),
            pod_name: Some("web-1".into()),
            pod_namespace: Some("shop".into()),
            ..Identity::default()
        };
        let text = table(&[kill("/a", None), kill("/b", Some(identity))], None);
        assert!(text.contains("CONTAINER") && text.contains("POD"), "{text}");
        assert!(text.contains("0123456789ab ") && text.contains("shop/web-1"), "{text}");
    }
}
