//! `oomrecorder stats`: who gets killed — kills per container, pod, unit and
//! command, and how many were a memory cgroup's OOM or the whole machine's.

use std::{io::Write, path::Path};

use clap::Args;
use serde_json::{json, Value};
use tabled::{builder::Builder, settings::Style};

use super::{exit::Exit, filter::FilterArgs, format};
use crate::{
    model::json::rfc3339_ms,
    store::{Access, Count, Stats, Store},
};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The kills to count (the filters of `list`).
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Show the N groups with the most kills of each kind.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: u32,
    /// One JSON object for scripts instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(db: &Path, args: &StatsArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db, Access::ReadOnly)?;
    let filter = args.filter.filter(&store)?;
    let stats = store.stats(&filter, args.top)?;
    format::to_stdout(|out| {
        if args.json {
            let value = to_json(&stats, filter.since_ns, filter.until_ns);
            serde_json::to_writer_pretty(&mut *out, &value)?;
            writeln!(out)
        } else {
            write_text(out, &stats)
        }
    })
}

/// `stats --json`. Like every JSON here, keys are only ever added.
pub fn to_json(stats: &Stats, since_ns: Option<i64>, until_ns: Option<i64>) -> Value {
    let groups = |counts: &[Count], key: &str, label: Option<&str>| -> Value {
        counts
            .iter()
            .map(|c| {
                let mut row = serde_json::Map::new();
                row.insert(key.to_owned(), Value::String(c.key.clone()));
                if let Some(label) = label {
                    row.insert(label.to_owned(), c.label.clone().map_or(Value::Null, Value::String));
                }
                row.insert("kills".to_owned(), Value::from(c.kills));
                Value::Object(row)
            })
            .collect()
    };
    json!({
        "since": rfc3339_ms(since_ns),
        "until": rfc3339_ms(until_ns),
        "total": stats.total,
        "memcg": stats.memcg,
        "global": stats.global,
        "unknown_constraint": stats.unknown_constraint,
        "other_constraint": stats.other_constraint,
        "containers": groups(&stats.by_container, "container_id", Some("container_name")),
        "pods": groups(&stats.by_pod, "pod_name", Some("pod_namespace")),
        "units": groups(&stats.by_unit, "unit", None),
        "comms": groups(&stats.by_comm, "comm", None),
    })
}

/// How a group is named in the table.
type Name = dyn Fn(&Count) -> String;

fn write_text(out: &mut dyn Write, stats: &Stats) -> std::io::Result<()> {
    let other = match stats.other_constraint {
        0 => String::new(),
        n => format!(", {n} cpuset or memory policy"),
    };
    writeln!(
        out,
        "{} kills: {} memory cgroup, {} global, {} not known{other}",
        stats.total, stats.memcg, stats.global, stats.unknown_constraint
    )?;
    let container = |c: &Count| match &c.label {
        Some(name) => format!("{name} ({})", c.key.chars().take(12).collect::<String>()),
        None => c.key.chars().take(12).collect(),
    };
    let pod = |c: &Count| match &c.label {
        Some(ns) => format!("{ns}/{}", c.key),
        None => c.key.clone(),
    };
    let plain = |c: &Count| c.key.clone();
    let sections: [(&str, &[Count], &Name); 4] = [
        ("CONTAINER", &stats.by_container, &container),
        ("POD", &stats.by_pod, &pod),
        ("UNIT", &stats.by_unit, &plain),
        ("COMM", &stats.by_comm, &plain),
    ];
    for (title, counts, name) in sections {
        if counts.is_empty() {
            continue;
        }
        let mut builder = Builder::new();
        builder.push_record(["KILLS", title]);
        for c in counts {
            builder.push_record([c.kills.to_string(), name(c)]);
        }
        writeln!(out, "\n{}", builder.build().with(Style::blank()))?;
    }
    Ok(())
}
