-- 003: the victim's kernel state read through BTF at the kill (raw
-- tracepoint program): task and mm figures, its memory cgroup's path, id and
-- page counters up the ancestors. Records from the tracepoint program, the
-- kernel log or an import keep these NULL.

ALTER TABLE kills ADD COLUMN nodename    TEXT;    -- the victim's UTS hostname (a container's own)
ALTER TABLE kills ADD COLUMN cgroup_id   INTEGER; -- kn->id of the victim's memory cgroup
ALTER TABLE kills ADD COLUMN kernel_json TEXT;    -- the whole kernel-state object (rss_stat, counters, ...)

CREATE INDEX kills_by_cgroup_id ON kills (cgroup_id);
