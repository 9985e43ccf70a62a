-- 009: kills the kernel counted twice in /proc/vmstat oom_kill (a
-- memory.oom.group kill's chosen victim, counted again by the walk of its
-- group: mm/oom_kill.c oom_kill_memcg_member), so the audit can take them off.

ALTER TABLE daemon_runs ADD COLUMN kernel_counted_twice INTEGER NOT NULL DEFAULT 0;
