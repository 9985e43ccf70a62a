//! `oomrecorder list`: recorded kills, newest first, narrowed by the
//! selection flags.

use std::{io::Write, ops::ControlFlow, path::Path};

use clap::Args;
use tabled::{
    builder::Builder,
    settings::{peaker::Priority, Style, Width},
};

use super::{exit::Exit, filter::FilterArgs, format};
use crate::{
    model::{json, Kill},
    store::{Access, Filter, Order, Rows, Store},
};

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
    let kills = store.list(&filter)?;
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

/// CONTAINER as people name it: its name, else the id shortened as
/// `docker ps` does (12 hex digits).
pub fn container_cell(kill: &Kill) -> Option<String> {
    let c = kill.container.as_ref()?;
    c.container_name.clone().or_else(|| c.id.as_ref().map(|id| id.chars().take(12).collect()))
}

/// POD as kubectl names it: `namespace/name`.
pub fn pod_cell(kill: &Kill) -> Option<String> {
    let c = kill.container.as_ref()?;
    let name = c.pod_name.as_ref()?;
    Some(match &c.pod_namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.clone(),
    })
}

/// The table, cut to `width` columns when given. CONTAINER and POD appear
/// only when a shown row has one, so a host without containers keeps its
/// narrow table.
pub fn table(kills: &[Kill], width: Option<usize>) -> String {
    let with_container = kills.iter().any(|k| container_cell(k).is_some());
    let with_pod = kills.iter().any(|k| pod_cell(k).is_some());
    let mut header = vec!["ID", "TIME", "PID", "COMM", "CGROUP", "ANON RSS", "LIMIT"];
    if with_container {
        header.push("CONTAINER");
    }
    if with_pod {
        header.push("POD");
    }
    let mut builder = Builder::new();
    builder.push_record(header);
    let dash = || "-".to_owned();
    for kill in kills {
        let mut row = vec![
            format::opt(kill.id),
            format::local_time(kill.time_ns),
            kill.victim.pid.to_string(),
            kill.victim.comm.clone().unwrap_or_else(dash),
            kill.cgroup.clone().unwrap_or_else(dash),
            format::kb(kill.victim.figures.anon_rss_kb),
            format::bytes_opt(kill.memory_limit_bytes),
        ];
        if with_container {
            row.push(container_cell(kill).unwrap_or_else(dash));
        }
        if with_pod {
            row.push(pod_cell(kill).unwrap_or_else(dash));
        }
        builder.push_record(row);
    }
    let mut table = builder.build();
    table.with(Style::blank());
    if let Some(width) = width {
        // Cut the widest column first (nearly always CGROUP, a long path),
        // so ID, TIME and PID stay whole; `…` shows where text was cut.
        table.with(Width::truncate(width).priority(Priority::max(true)).suffix("…"));
    }
    table.to_string()
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
