//! What `list`, `stats`, `watch` and `show` select, and the SQL for it.
//! Only fixed SQL text is built here; every user value is a bound parameter.

use rusqlite::types::Value;

use crate::model::scope::OomScope;

/// What `list`, `stats` and `watch` select. `Filter::default()` is every
/// record, newest first. Each field narrows; all of them must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// At most this many rows.
    pub limit: Option<u32>,
    /// Killed at or after this instant (Unix ns); records of unknown time are left out.
    pub since_ns: Option<i64>,
    /// Killed at or before this instant (Unix ns); records of unknown time are left out.
    pub until_ns: Option<i64>,
    /// The victim's `comm`, exactly.
    pub comm: Option<String>,
    pub pid: Option<i32>,
    /// A substring of the victim's cgroup, or of the task or OOM cgroup the kernel log named.
    pub cgroup: Option<String>,
    /// A prefix of the container id (as `docker ps` shortens it), or the container's name.
    pub container: Option<String>,
    /// The container's image as its runtime names it (`nginx:1.25`), or that
    /// name without its tag or digest (`nginx` matches every `nginx:<tag>`).
    pub image: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub unit: Option<String>,
    pub boot_id: Option<String>,
    /// Which OOM ([`crate::model::scope::classify`]).
    pub scope: Option<OomScope>,
    /// Only records stored after this id (`watch`).
    pub after_id: Option<i64>,
    /// Only records stored up to this id (the metrics' seed at start: what
    /// the daemon stores after it is counted as it is stored).
    pub until_id: Option<i64>,
    pub order: Order,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Newest first; records of unknown time last.
    #[default]
    NewestFirst,
    /// The exact reverse: records of unknown time first, then oldest first.
    OldestFirst,
    /// In the order they were stored (`watch`).
    Stored,
}

impl Filter {
    /// The WHERE clause and its parameters, in order. Only fixed SQL text is
    /// built here; every user value is a bound `?` parameter.
    pub(super) fn where_clause(&self) -> (String, Vec<Value>) {
        let mut clauses: Vec<&'static str> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        let text = |s: &String| Value::Text(s.clone());
        if let Some(ns) = self.since_ns {
            clauses.push("time_ns >= ?");
            params.push(Value::Integer(ns));
        }
        if let Some(ns) = self.until_ns {
            clauses.push("time_ns <= ?");
            params.push(Value::Integer(ns));
        }
        if let Some(comm) = &self.comm {
            clauses.push("victim_comm = ?");
            params.push(text(comm));
        }
        if let Some(pid) = self.pid {
            clauses.push("victim_pid = ?");
            params.push(Value::Integer(pid.into()));
        }
        if let Some(cgroup) = &self.cgroup {
            // instr, not LIKE: a path may hold `_` and `%`, which LIKE would
            // read as wildcards.
            clauses.push("(instr(cgroup, ?) > 0 OR instr(task_cgroup, ?) > 0 OR instr(oom_cgroup, ?) > 0)");
            params.extend([text(cgroup), text(cgroup), text(cgroup)]);
        }
        if let Some(container) = &self.container {
            clauses.push("(substr(container_id, 1, length(?)) = ? OR container_name = ?)");
            params.extend([text(container), text(container), text(container)]);
        }
        if let Some(image) = &self.image {
            // The image is kept only in the identity object (no column of
            // its own): SQLite's json_extract reads it. A tag never holds a
            // `/` (distribution's reference grammar: `[\w][\w.-]{0,127}`),
            // so `registry:5000/app` is not the image `registry` tagged `5000/app`.
            clauses.push(
                "(json_extract(container_json, '$.image') = ? \
                 OR (substr(json_extract(container_json, '$.image'), 1, length(?) + 1) = ? || ':' \
                     AND instr(substr(json_extract(container_json, '$.image'), length(?) + 2), '/') = 0) \
                 OR substr(json_extract(container_json, '$.image'), 1, length(?) + 1) = ? || '@')",
            );
            params.extend(std::iter::repeat_n(text(image), 6));
        }
        if let Some(pod) = &self.pod {
            clauses.push("pod_name = ?");
            params.push(text(pod));
        }
        if let Some(namespace) = &self.namespace {
            clauses.push("pod_namespace = ?");
            params.push(text(namespace));
        }
        if let Some(unit) = &self.unit {
            clauses.push("unit = ?");
            params.push(text(unit));
        }
        if let Some(boot_id) = &self.boot_id {
            clauses.push("boot_id = ?");
            params.push(text(boot_id));
        }
        if let Some(scope) = self.scope {
            clauses.push("oom_scope = ?");
            params.push(Value::Text(scope.as_str().into()));
        }
        if let Some(id) = self.after_id {
            clauses.push("id > ?");
            params.push(Value::Integer(id));
        }
        if let Some(id) = self.until_id {
            clauses.push("id <= ?");
            params.push(Value::Integer(id));
        }
        if clauses.is_empty() {
            (String::new(), params)
        } else {
            (format!(" WHERE {}", clauses.join(" AND ")), params)
        }
    }

    /// The whole SELECT `list` runs (public for the EXPLAIN QUERY PLAN test).
    pub fn list_sql(&self) -> (String, Vec<Value>) {
        self.select_sql("*")
    }

    /// The SELECT of `columns` (an SQL result list) for the kills this
    /// filter selects, in its order.
    pub(super) fn select_sql(&self, columns: &str) -> (String, Vec<Value>) {
        let (where_clause, mut params) = self.where_clause();
        // SQLite sorts NULL below every value, so DESC puts records of
        // unknown time last without an `IS NULL` term that would keep the
        // planner from walking an index in order.
        let order = match self.order {
            Order::NewestFirst => "time_ns DESC, id DESC",
            Order::OldestFirst => "time_ns ASC, id ASC",
            Order::Stored => "id ASC",
        };
        // SQLite reads a negative LIMIT as "no limit".
        params.push(Value::Integer(self.limit.map_or(-1, i64::from)));
        (format!("SELECT {columns} FROM kills{where_clause} ORDER BY {order} LIMIT ?"), params)
    }
}

#[cfg(test)]
mod tests {
    use super::Filter;
    use crate::{
        model::{identity::Identity, Kill},
        store::{tests::sample_kill, Access, Store},
    };

    /// `--image` takes the image as the runtime names it, or its name
    /// without tag or digest; never a part of the name, and never a
    /// registry's host taken for an image name.
    #[test]
    fn an_image_filter_matches_the_whole_name_or_the_name_without_its_tag() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("oom.db"), Access::ReadWrite).unwrap();
        let images = [
            Some("nginx:1.25"),
            Some("nginx@sha256:0123"),
            Some("nginx-extra:2"),
            Some("localhost:5000/app:1"),
            Some("docker.io/oomrecorder/bookworm:0a1b2c"),
            None,
        ];
        for (pid, image) in (1..).zip(images) {
            let container = Identity { image: image.map(str::to_owned), ..Identity::default() };
            store
                .insert(&Kill { container: Some(container), ..sample_kill(pid, pid as u64 * 1000) })
                .unwrap();
        }
        store.insert(&sample_kill(99, 99_000)).unwrap();
        let pids = |image: &str| -> Vec<i32> {
            let filter = Filter { image: Some(image.into()), ..Filter::default() };
            let mut pids: Vec<i32> = store.list(&filter).unwrap().iter().map(|k| k.victim.pid).collect();
            pids.sort_unstable();
            pids
        };
        assert_eq!(pids("nginx:1.25"), [1]);
        assert_eq!(pids("nginx"), [1, 2], "every tag and digest of nginx");
        assert_eq!(pids("nginx:1"), Vec::<i32>::new(), "a tag is matched whole");
        assert_eq!(pids("ngin"), Vec::<i32>::new());
        assert_eq!(pids("localhost"), Vec::<i32>::new(), "a registry host is not an image");
        assert_eq!(pids("localhost:5000/app"), [4]);
        assert_eq!(pids("docker.io/oomrecorder/bookworm"), [5]);
        assert_eq!(pids("x' OR '1'='1"), Vec::<i32>::new(), "a bound value, never SQL");
    }
}
