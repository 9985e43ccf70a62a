//! `oomrecorder list`: recorded kills, newest first, narrowed by the
//! selection flags.

use std::{io::Write, ops::ControlFlow, path::Path};

use super::{
    exit::Exit,
    filter::FilterArgs,
    format,
    table::{Row, Table},
};
use crate::{
    model::{json, Kill},
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
            let narrowed = filter != Filter { limit: filter.limit, order: filter.order, ..Filter::default() };
            let what = if narrowed { "match these filters" } else { "recorded" };
            writeln!(out, "No OOM kills {what} in {}.", db.display())
        } else {
            writeln!(out, "{}", table(&kills, format::stdout_width()))
        }
    })
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
