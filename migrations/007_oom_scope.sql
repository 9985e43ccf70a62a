-- 007: which OOM each kill was (model::scope: memcg, global, cpuset,
-- mempolicy; NULL when the record cannot say), in one column that `stats`,
-- `list --memcg/--global` and `show` share. The constraint alone left kills
-- without a report header (rate-limited, or only in the kill line) unknown,
-- though their kill line's reason says which they were. Existing rows are
-- classified by the same Rust function right after this file runs
-- (store::migrations), so there is one rule, not a second one in SQL.

ALTER TABLE kills ADD COLUMN oom_scope TEXT;

-- `stats` reads a time range from this index alone: it now groups by the
-- scope instead of the constraint.
DROP INDEX kills_for_stats;
CREATE INDEX kills_for_stats ON kills (time_ns, oom_scope, container_id, container_name,
    pod_namespace, pod_name, unit, victim_comm);
