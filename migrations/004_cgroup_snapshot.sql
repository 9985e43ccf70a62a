-- 004: the victim's cgroup files read right after the kill, and who the
-- victim was (container, pod, unit) in the names SREs search by. The
-- identity columns are what `list` filters on; the rest is JSON.

ALTER TABLE kills ADD COLUMN victim_cmdline TEXT;
ALTER TABLE kills ADD COLUMN victim_exe     TEXT;
ALTER TABLE kills ADD COLUMN container_id   TEXT;
ALTER TABLE kills ADD COLUMN pod_uid        TEXT;
ALTER TABLE kills ADD COLUMN pod_namespace  TEXT;
ALTER TABLE kills ADD COLUMN pod_name       TEXT;
ALTER TABLE kills ADD COLUMN container_name TEXT;
ALTER TABLE kills ADD COLUMN unit           TEXT;
ALTER TABLE kills ADD COLUMN container_json TEXT;  -- the whole identity object
ALTER TABLE kills ADD COLUMN snapshot_json  TEXT;  -- the cgroup files as read after the kill

CREATE INDEX kills_by_pod ON kills (pod_name);
CREATE INDEX kills_by_container ON kills (container_id);
