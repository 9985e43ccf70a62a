//! `stats`: kills counted per container, pod, unit and comm, and by
//! constraint, in one pass over a covering index.

use rusqlite::types::Value;

use super::{Filter, Store, StoreError};
use crate::model::scope::OomScope;

/// Kills counted by who was killed (`stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub total: u64,
    pub memcg: u64,
    pub global: u64,
    /// OOMs of a cpuset's or a memory policy's nodes.
    pub other_constraint: u64,
    /// Records that cannot say which OOM they were
    /// ([`crate::model::scope::classify`] found nothing).
    pub unknown_constraint: u64,
    pub by_container: Vec<Count>,
    pub by_pod: Vec<Count>,
    pub by_unit: Vec<Count>,
    pub by_comm: Vec<Count>,
}

/// One group of [`Stats`]: its name, a second name when the group has one
/// (a container's name beside its id, a pod's namespace), and its kills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    pub key: String,
    pub label: Option<String>,
    pub kills: u64,
}

/// The one SELECT `stats` runs (public for the EXPLAIN QUERY PLAN test):
/// only columns of the `kills_for_stats` index, so a time range is read from
/// the index alone. Counting happens in Rust in the same pass: one range
/// read instead of one GROUP BY per kind, each of which the planner would
/// rather answer by walking that kind's own index over the whole table.
pub fn stats_sql(filter: &Filter) -> (String, Vec<Value>) {
    let all = Filter { limit: None, ..filter.clone() };
    let (where_clause, params) = all.where_clause();
    (
        format!(
            "SELECT oom_scope, container_id, container_name, pod_namespace, pod_name, unit, victim_comm \
             FROM kills{where_clause}"
        ),
        params,
    )
}

/// Counts per (key, label), the `top` largest, most kills first then by name.
#[derive(Default)]
struct Tally(std::collections::HashMap<(String, Option<String>), u64>);

impl Tally {
    fn add(&mut self, key: Option<String>, label: Option<String>) {
        if let Some(key) = key {
            *self.0.entry((key, label)).or_default() += 1;
        }
    }

    fn top(self, n: u32) -> Vec<Count> {
        let mut counts: Vec<Count> =
            self.0.into_iter().map(|((key, label), kills)| Count { key, label, kills }).collect();
        counts
            .sort_by(|a, b| b.kills.cmp(&a.kills).then_with(|| (&a.key, &a.label).cmp(&(&b.key, &b.label))));
        counts.truncate(n as usize);
        counts
    }
}

impl Store {
    /// Kills matching `filter` (its limit ignored) counted per container,
    /// pod, unit and comm (the `top` largest of each), and by which OOM it was.
    pub fn stats(&self, filter: &Filter, top: u32) -> Result<Stats, StoreError> {
        let (sql, params) = stats_sql(filter);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(|e| self.sql(e))?;
        let mut stats = Stats::default();
        let (mut containers, mut pods, mut units, mut comms) =
            (Tally::default(), Tally::default(), Tally::default(), Tally::default());
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let text = |i: usize| row.get::<_, Option<String>>(i).map_err(|e| self.sql(e));
            stats.total += 1;
            match text(0)?.as_deref().and_then(OomScope::parse) {
                Some(OomScope::Memcg) => stats.memcg += 1,
                Some(OomScope::Global) => stats.global += 1,
                Some(OomScope::Cpuset | OomScope::MemoryPolicy) => stats.other_constraint += 1,
                None => stats.unknown_constraint += 1,
            }
            containers.add(text(1)?, text(2)?);
            // A pod is its name within its namespace.
            pods.add(text(4)?, text(3)?);
            units.add(text(5)?, None);
            comms.add(text(6)?, None);
        }
        stats.by_container = containers.top(top);
        stats.by_pod = pods.top(top);
        stats.by_unit = units.top(top);
        stats.by_comm = comms.top(top);
        Ok(stats)
    }
}
