-- 005: indexes for `list` filters, `--boot -N` and `stats`.
--
-- A pod's kills since a time, newest first: one index range, already in
-- order (time_ns, then rowid), so `LIMIT 50` stops after 50 rows. It starts
-- with pod_name, so it does all that kills_by_pod did; one index less to
-- write per kill.
CREATE INDEX kills_by_pod_time ON kills (pod_name, time_ns);
DROP INDEX kills_by_pod;

-- Each boot's earliest kill (`list --boot -1`) without reading the table,
-- and one boot's kills in time order.
CREATE INDEX kills_by_boot_time ON kills (boot_id, time_ns);

-- `stats --since`: every column it groups by, after time_ns, so a time
-- range is counted from the index alone (a covering index) instead of one
-- table lookup per kill.
CREATE INDEX kills_for_stats ON kills (time_ns, oom_constraint, container_id, container_name,
    pod_namespace, pod_name, unit, victim_comm);
